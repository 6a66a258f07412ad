"""The policy's key and boot rules as the check provisioning and EST re-enrollment make once
a unit is proven (`provisioning.AdmissionFor`).

    ProvisioningService(..., admission=KeyAdmission(platform.policy, platform.attestation))

In this order, each a 403 with its code:

1. the key's algorithm and size are allowed                   policy.key_algorithm_not_allowed
                                                              / _unknown / policy.key_too_small
2. with `hardware_key_required`, the key is attested in a TPM: certified by the unit's
   attestation key in this request, or (re-enrollment) the very key the TPM certified when
   the unit was provisioned                                   policy.hardware_key_required
3. a quote sent with the request is judged against the golden measurements and recorded
   (`device.boot_attested`), whatever the policy
4. with `measured_boot_required`, the boot matched an active golden measurement: this
   request's quote, or (re-enrollment, which carries none) the unit's latest one, judged
   again against today's golden measurements           policy.measured_boot_required /
                                                       policy.boot_measurements_unknown

Resolved on every call (a relaxation or a tightening applies at once); a unit the registry
does not know is judged by the baseline.
"""

from __future__ import annotations

from devicetrust.attestation import AttestationService, judge
from devicetrust.domain.errors import NotFound
from devicetrust.pki.csr import spki_sha256
from devicetrust.policy.errors import PolicyRefusal
from devicetrust.policy.evaluation import check_key, key_spec
from devicetrust.policy.model import SecurityPolicy
from devicetrust.policy.service import PolicyService
from devicetrust.provisioning.admission import AdmissionRequest

__all__ = ["KeyAdmission"]


class KeyAdmission:
    """An `AdmissionFor` backed by the policy and attestation services."""

    def __init__(self, policy: PolicyService, attestation: AttestationService) -> None:
        self._policy = policy
        self._attestation = attestation

    def __call__(self, request: AdmissionRequest) -> None:
        policy = self._effective(request)
        algorithm, size = key_spec(request.public_key)
        hardware = request.hardware_attested or (
            policy.hardware_key_required
            and self._policy.posture.key_attested(
                request.physical_id, spki_sha256(request.public_key)
            )
        )
        check_key(policy, algorithm, size, hardware).require()
        if request.boot_pcrs is not None:
            attested = self._attestation.record(
                request.physical_id,
                request.boot_pcrs,
                source=request.entry_point,
                ak_public=request.boot_ak,
            )
            if policy.measured_boot_required and not attested.ok:
                raise PolicyRefusal("policy.boot_measurements_unknown", attested.detail)
        elif policy.measured_boot_required:
            self._require_earlier_boot(request)

    def _require_earlier_boot(self, request: AdmissionRequest) -> None:
        latest = (
            self._attestation.latest(request.physical_id)
            if request.entry_point != "provisioning"
            else None
        )
        if latest is None:
            raise PolicyRefusal(
                "policy.measured_boot_required",
                "the policy requires measured boot: provision with TPM attestation and a quote",
            )
        goldens = {g.name: g.pcrs for g in self._attestation.goldens()}
        judgement = judge(latest.pcrs, goldens)
        if not judgement.ok:
            raise PolicyRefusal("policy.boot_measurements_unknown", judgement.detail)

    def _effective(self, request: AdmissionRequest) -> SecurityPolicy:
        try:
            return self._policy.effective(request.physical_id, enrollment=request.enrollment).policy
        except NotFound:
            return self._policy.baseline

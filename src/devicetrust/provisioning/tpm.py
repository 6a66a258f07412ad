"""TPM 2.0 attestation: EK-based credential activation binding an AK to the enrolled EK, and
the AK's certification of the operational key (the "hardware key" sign option).

The exchange (all TPM structures marshalled, base64 in JSON):

1. device -> server  `ak_public` (TPM2B_PUBLIC of its attestation key)
   server            `new_challenge`: MakeCredential of a fresh secret to the enrollment's EK
                     for the AK's Name (`_tpm_credential`)
   server -> device  `credential_blob`, `encrypted_secret`, `nonce`, `quote_pcrs` (the SHA-256
                     PCRs to quote for measured boot, `0,1,...`) (+ the service's challenge id)
2. device            TPM2_ActivateCredential (EK + AK loaded) recovers the secret; creates its
                     operational key in the TPM, TPM2_Certify of it by the AK with the nonce as
                     qualifying data, and a CSR signed by it
   device -> server  `challenge_id`, `ak_public`, `secret`, `key_public`, `certify_info`,
                     `certify_signature` (+ the CSR); for measured boot also the AK's
                     TPM2_Quote of `quote_pcrs` with the nonce: `quote_info`,
                     `quote_signature`, `pcr_values` (hex by index)
3. server            `authorize`, in this order: the enrolled EK passes the EK policy
                     (`_tpm_ek_policy`: its certificate chains to a trusted TPM maker's CA,
                     or none is required)                          provisioning.tpm_ek_untrusted /
                                                                   _certificate_required
                     the challenge is this service's, unused,
                     unexpired, for this unit and method           provisioning.challenge_invalid
                     the evidence decodes                          provisioning.malformed_evidence
                     secret matches (constant time) the one sealed
                     to the EK for this AK's Name                  provisioning.tpm_refused
                     the certification verifies (`_tpm_certify`)   provisioning.tpm_refused
                     a quote, if sent, verifies (`_tpm_quote`)     provisioning.tpm_refused
                     -> `Authorization(attested_key_sha256=..., boot_pcrs=...)`, the
                        challenge named single-use

`new_challenge` (step 1) checks the EK policy too, so a unit whose EK is not trusted gets no
credential to activate. Only individual enrollments: the EK is registered per unit at the
factory (`tpm_ek_public` holds its TPM2B_PUBLIC, from `register_endorsement_key`). Never
issues or signs anything, never burns the challenge itself, and never puts the secret or the
nonce in an error or audit.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from devicetrust.attestation import DEFAULT_QUOTE_PCRS
from devicetrust.domain.clock import Clock, SystemClock
from devicetrust.domain.ids import PhysicalId
from devicetrust.provisioning._tpm_certify import CertifiedKey, verify_certify
from devicetrust.provisioning._tpm_credential import (
    TpmChallenge,
    check_activation,
    make_challenge,
    nonce_of,
)
from devicetrust.provisioning._tpm_ek_policy import EkPolicy, ek_policy, load_certificates
from devicetrust.provisioning._tpm_endorsement import (
    EkTrust,
    EndorsementKey,
    default_public_area,
    register_endorsement_key,
)
from devicetrust.provisioning._tpm_errors import (
    EndorsementKeyRefused,
    EndorsementKeyUntrusted,
    TpmSupportMissing,
)
from devicetrust.provisioning._tpm_objects import TpmKeyRole, parse_public
from devicetrust.provisioning._tpm_quote import quote_fields, verify_quote
from devicetrust.provisioning.errors import AttestationFailed, MalformedEvidence, RefusalReason
from devicetrust.provisioning.methods import (
    AttestationContext,
    Authorization,
    NewChallenge,
    RegistrationRequest,
    SingleUse,
)
from devicetrust.provisioning.records import AttestationKind, Enrollment, EnrollmentKind

__all__ = [
    "CertifiedKey",
    "EkPolicy",
    "EkTrust",
    "EndorsementKey",
    "EndorsementKeyRefused",
    "EndorsementKeyUntrusted",
    "TpmAttestation",
    "TpmChallenge",
    "TpmSupportMissing",
    "default_public_area",
    "ek_policy",
    "load_certificates",
    "make_challenge",
    "register_endorsement_key",
    "verify_certify",
]

MAX_EVIDENCE_FIELD = 4096  # base64 characters; the largest TPM structure here is ~800 bytes


class TpmAttestation:
    """The TPM 2.0 `ChallengingMethod` (see `provisioning.methods`). With an `ek_policy`,
    enrolled EKs are checked against it at every challenge and registration (time from
    `clock` when a challenge is made, from the service's context when one is answered)."""

    def __init__(
        self,
        ek_policy: EkPolicy | None = None,
        *,
        clock: Clock | None = None,
        quote_selection: Callable[[], tuple[int, ...]] | None = None,
    ) -> None:
        self._ek_policy = ek_policy
        self._clock: Clock = clock or SystemClock()
        self._quote_selection = quote_selection or (lambda: DEFAULT_QUOTE_PCRS)

    @property
    def kind(self) -> AttestationKind:
        return AttestationKind.TPM

    def new_challenge(
        self,
        physical_id: PhysicalId,
        enrollment: Enrollment,
        evidence: Mapping[str, Any] | None = None,
    ) -> NewChallenge:
        """A MakeCredential for the AK in `evidence["ak_public"]` under the enrollment's EK."""
        ek_public = _enrolled_ek(physical_id, enrollment)
        self._check_ek(enrollment, self._clock.now())
        if evidence is None:
            raise MalformedEvidence("a TPM challenge needs the device's ak_public")
        challenge = make_challenge(ek_public, evidence_field(evidence, "ak_public"))
        return NewChallenge(
            payload={
                "credential_blob": _b64(challenge.credential_blob),
                "encrypted_secret": _b64(challenge.encrypted_secret),
                "nonce": _b64(challenge.nonce),
                "quote_pcrs": ",".join(str(pcr) for pcr in self._quote_selection()),
            },
            expected=challenge.expectation,
        )

    def authorize(
        self,
        request: RegistrationRequest,
        enrollment: Enrollment,
        context: AttestationContext,
    ) -> Authorization:
        """Step 3 of the module docstring."""
        _enrolled_ek(request.physical_id, enrollment)
        self._check_ek(enrollment, context.now())
        evidence = request.evidence
        challenge_id = evidence.get("challenge_id")
        stored = context.challenge(challenge_id) if isinstance(challenge_id, str) else None
        if (
            stored is None
            or stored.used
            or context.now() >= stored.expires_at
            or stored.physical_id != request.physical_id
            or stored.method != AttestationKind.TPM
        ):
            raise AttestationFailed(
                RefusalReason.CHALLENGE_INVALID, "unknown, used or expired challenge"
            )
        ak = parse_public(
            evidence_field(evidence, "ak_public"), TpmKeyRole.ATTESTATION, "ak_public"
        )
        check_activation(stored.expected, ak.name, evidence_field(evidence, "secret"))
        certified = verify_certify(
            ak_public=ak.area,
            key_public=evidence_field(evidence, "key_public"),
            attest=evidence_field(evidence, "certify_info"),
            signature=evidence_field(evidence, "certify_signature"),
            nonce=nonce_of(stored.expected),
        )
        boot_pcrs = None
        if quote_fields(evidence):
            boot_pcrs = verify_quote(
                ak=ak,
                attest=evidence_field(evidence, "quote_info"),
                signature=evidence_field(evidence, "quote_signature"),
                pcr_values=evidence["pcr_values"],
                nonce=nonce_of(stored.expected),
            )
        return Authorization(
            physical_id=request.physical_id,
            enrollment_id=enrollment.enrollment_id,
            method=AttestationKind.TPM,
            single_use=SingleUse("challenge", stored.challenge_id, stored.expires_at),
            attested_key_sha256=certified.spki_sha256,
            audit={"ak_name": ak.name.hex(), "key_name": certified.name.hex()},
            boot_pcrs=boot_pcrs,
            boot_ak=ak.area if boot_pcrs is not None else None,
        )

    def _check_ek(self, enrollment: Enrollment, at: datetime) -> None:
        if self._ek_policy is not None:
            self._ek_policy.check(enrollment, at)


def _enrolled_ek(physical_id: PhysicalId, enrollment: Enrollment) -> bytes:
    if (
        enrollment.kind is not EnrollmentKind.INDIVIDUAL
        or enrollment.physical_id != physical_id
        or enrollment.tpm_ek_public is None
    ):
        raise AttestationFailed(
            RefusalReason.TPM_REFUSED, "no endorsement key is enrolled for this unit"
        )
    return enrollment.tpm_ek_public


def evidence_field(evidence: Mapping[str, Any], name: str) -> bytes:
    value = evidence.get(name)
    if not isinstance(value, str) or not value or len(value) > MAX_EVIDENCE_FIELD:
        raise MalformedEvidence(f"evidence field {name} is missing or not base64", field=name)
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise MalformedEvidence(f"evidence field {name} is not base64", field=name) from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")

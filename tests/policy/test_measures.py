"""The measures' pure core on hand-built facts: what no service path can produce on demand
(a key certified for two units, a TPM-held key without swtpm)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from devicetrust.domain import DeviceState
from devicetrust.domain.ids import PhysicalId
from devicetrust.policy import resolve
from devicetrust.policy.posture import Measure, Status
from devicetrust.policy.posture.facts import CertFacts, DeviceFacts
from devicetrust.policy.posture.measures import assess_device, worst
from devicetrust.provisioning import AttestationKind

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
PID = PhysicalId("c2c38155-b0d2-48b6-82fd-22fe3b316224")
CERT = CertFacts(
    "ab" * 20, NOW - timedelta(minutes=5), NOW + timedelta(hours=24), "k1", "ec-p256", 256
)
TPM_DEVICE = DeviceFacts(
    physical_id=PID,
    model="arm-r7",
    state=DeviceState.ACTIVE,
    logical_name="line-03-left-welding-12",
    enrollment="line-03-tpm",
    attestation=AttestationKind.TPM,
    require_hardware_key=True,
    enrollment_key_sealed=None,
    provisioned_spki="k1",
    certificates=(CERT,),
    shared_key_units=0,
    effective=resolve([], [], NOW, physical_id=PID),
)


def _judge(facts: DeviceFacts) -> dict[Measure, Status]:
    return {r.measure: r.status for r in assess_device(facts)}


def test_tpm_held_key_passes_and_a_renewed_software_key_fails() -> None:
    got = _judge(TPM_DEVICE)
    assert got[Measure.KEY_IN_HARDWARE] is Status.PASS
    assert got[Measure.ATTESTATION] is Status.PASS
    renewed = replace(TPM_DEVICE, certificates=(replace(CERT, spki_sha256="k2"),))
    assert _judge(renewed)[Measure.KEY_IN_HARDWARE] is Status.FAIL
    unbound = replace(TPM_DEVICE, require_hardware_key=False)
    assert _judge(unbound)[Measure.KEY_IN_HARDWARE] is Status.FAIL


def test_a_key_shared_between_units_is_not_a_unique_identity() -> None:
    assert _judge(replace(TPM_DEVICE, shared_key_units=1))[Measure.UNIQUE_IDENTITY] is Status.FAIL
    unnamed = replace(TPM_DEVICE, logical_name=None)
    assert _judge(unnamed)[Measure.UNIQUE_IDENTITY] is Status.FAIL


def test_weak_keys_and_unsealed_enrollment_keys_fail() -> None:
    rsa2048 = replace(TPM_DEVICE, certificates=(replace(CERT, algorithm="rsa", size=2048),))
    assert _judge(rsa2048)[Measure.SECURE_COMMUNICATION] is Status.FAIL
    clear = replace(
        TPM_DEVICE, attestation=AttestationKind.SYMMETRIC_KEY, enrollment_key_sealed=False
    )
    assert _judge(clear)[Measure.ENCRYPTED_STORAGE] is Status.FAIL


def test_worst_ranks_fail_unknown_relaxed_pass() -> None:
    assert worst([Status.PASS, Status.RELAXED]) is Status.RELAXED
    assert worst([Status.RELAXED, Status.UNKNOWN]) is Status.UNKNOWN
    assert worst([Status.UNKNOWN, Status.FAIL, Status.PASS]) is Status.FAIL
    assert worst([Status.NOT_APPLICABLE]) is Status.NOT_APPLICABLE
    assert worst([]) is Status.NOT_APPLICABLE

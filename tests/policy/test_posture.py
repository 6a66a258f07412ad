"""The posture report from live state: devices registered, provisioned (symmetric key and
X.509 birth certificates) and certified by the real services; every change of state (a
long-lived certificate, a relaxation, its lapse, a revocation, decommissioning) changes it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devicetrust.domain import DeviceState, FixedClock
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService
from devicetrust.pki import Hierarchy, PkiService, Profile
from devicetrust.pki.csr import spki_sha256
from devicetrust.policy import PolicyService
from devicetrust.policy.posture import Measure, Status
from devicetrust.provisioning import (
    Allocation,
    AllocationPolicy,
    AttestationKind,
    ProvisioningService,
    RegistrationStatus,
)
from tests.policy.conftest import ACTOR
from tests.provisioning.conftest import birth_certificate, csr_for, new_key, token_request
from tests.provisioning.test_x509 import signed_request

POOL = Allocation(AllocationPolicy.POOL, pool_pattern="line-03-cell-{01..09}")
REASON = "spare parts arrive next month"


def _statuses(policy: PolicyService, pid: str) -> dict[Measure, Status]:
    return {r.measure: r.status for r in policy.posture.device(pid).measures}


@pytest.fixture
def symmetric_device(
    provisioning: ProvisioningService, clock: FixedClock, units: list[PhysicalIdentity]
) -> str:
    shown = provisioning.enrollments.create_symmetric_group("line-03", POOL, actor=ACTOR)
    shown.key[:] = bytes(len(shown.key))
    pid = units[0].physical_id
    key = provisioning.enrollments.derive_device_key("line-03", pid)
    assert provisioning.provision(token_request(pid, key, clock)).status is (
        RegistrationStatus.ASSIGNED
    )
    return pid


def test_a_symmetric_key_device_and_a_long_lived_certificate(
    policy: PolicyService, pki: PkiService, clock: FixedClock, symmetric_device: str
) -> None:
    pid = symmetric_device
    posture = policy.posture.device(pid)
    got = {r.measure: r for r in posture.measures}
    assert got[Measure.UNIQUE_IDENTITY].status is Status.PASS
    assert "line-03-cell-01" in got[Measure.UNIQUE_IDENTITY].reason
    assert got[Measure.SHORT_LIVED_CREDENTIALS].status is Status.PASS
    assert got[Measure.KEY_IN_HARDWARE].status is Status.FAIL  # the policy requires hardware
    assert got[Measure.ATTESTATION].status is Status.FAIL  # a key the platform also holds
    assert got[Measure.SECURE_COMMUNICATION].status is Status.PASS
    # no data yet: unknown, never passing
    for measure in (Measure.SIGNED_FIRMWARE, Measure.MEASURED_BOOT, Measure.ENCRYPTED_STORAGE):
        assert got[measure].status is Status.UNKNOWN and got[measure].reason
    etsi = {r.ref: r.status for r in posture.etsi}
    assert etsi["5.3"] is Status.UNKNOWN and etsi["5.2"] is Status.UNKNOWN
    assert etsi["5.4"] is Status.FAIL and etsi["5.5"] is Status.PASS
    nist = {r.ref: r.status for r in posture.nist}
    assert set(nist) == {
        "device_identification",
        "device_configuration",
        "data_protection",
        "logical_access_to_interfaces",
        "software_update",
        "cybersecurity_state_awareness",
    }
    assert nist["software_update"] is Status.UNKNOWN

    # a certificate for 30 days: no longer short-lived
    long_cert = pki.issue_from_csr(
        csr_for(new_key()), pid, Profile.DEVICE, actor=ACTOR, lifetime=timedelta(days=30)
    )
    assert _statuses(policy, pid)[Measure.SHORT_LIVED_CREDENTIALS] is Status.FAIL

    # a conscious relaxation for this device turns the failure into "relaxed", named
    relaxation = policy.relax(
        "max_certificate_lifetime",
        "30d",
        f"device:{pid}",
        reason=REASON,
        expires="2d",
        actor=ACTOR,
    )
    result = {r.measure: r for r in policy.posture.device(pid).measures}
    assert result[Measure.SHORT_LIVED_CREDENTIALS].status is Status.RELAXED
    assert result[Measure.SHORT_LIVED_CREDENTIALS].relaxations == (relaxation.relaxation_id,)
    assert policy.posture.device(pid).to_json()["relaxations"][0]["reason"] == REASON

    clock.advance(timedelta(days=2, seconds=1))  # the relaxation lapses; the cert is still valid
    assert _statuses(policy, pid)[Measure.SHORT_LIVED_CREDENTIALS] is Status.FAIL
    fleet = policy.posture.fleet().to_json()
    assert [r["status"] for r in fleet["relaxations"]] == ["lapsed"]

    pki.revoke(long_cert.serial, "superseded", actor=ACTOR)
    # the provisioning certificate (24 h) has expired by now too: no credential left
    assert _statuses(policy, pid)[Measure.SHORT_LIVED_CREDENTIALS] is Status.NOT_APPLICABLE


def test_x509_birth_key_with_hardware_relaxation(
    policy: PolicyService,
    provisioning: ProvisioningService,
    pki: PkiService,
    units: list[PhysicalIdentity],
) -> None:
    pid = units[1].physical_id
    key = new_key()
    pem = birth_certificate(pki, pid, key)
    provisioning.enrollments.create_individual(
        pid,
        AttestationKind.X509,
        Allocation(AllocationPolicy.STATIC, static_name="line-03-left-welding-12"),  # type: ignore[arg-type]
        key_fingerprint="sha256:" + spki_sha256(key.public_key()),
        require_hardware_key=True,
        actor=ACTOR,
    )
    provisioning.provision(signed_request(provisioning, pid, key, pem, csr=csr_for(key)))
    got = _statuses(policy, pid)
    assert not policy.posture.key_attested(pid, spki_sha256(key.public_key()))
    assert got[Measure.ATTESTATION] is Status.PASS
    assert got[Measure.KEY_IN_HARDWARE] is Status.FAIL  # a birth key is not proven hardware
    relaxation = policy.relax(
        "hardware_key_required",
        "false",
        f"enrollment:{pid}/x509",
        reason=REASON,
        expires="30d",
        actor=ACTOR,
    )
    result = {r.measure: r for r in policy.posture.device(pid).measures}
    assert result[Measure.KEY_IN_HARDWARE].status is Status.RELAXED
    assert result[Measure.KEY_IN_HARDWARE].relaxations == (relaxation.relaxation_id,)
    policy.revoke_relaxation(relaxation.relaxation_id, actor=ACTOR, reason="TPM fitted now")
    assert _statuses(policy, pid)[Measure.KEY_IN_HARDWARE] is Status.FAIL


def test_unprovisioned_and_decommissioned_units(
    policy: PolicyService, identity: IdentityService, units: list[PhysicalIdentity]
) -> None:
    fresh = _statuses(policy, units[0].physical_id)
    assert fresh[Measure.UNIQUE_IDENTITY] is Status.PASS
    assert fresh[Measure.ATTESTATION] is Status.NOT_APPLICABLE
    assert fresh[Measure.KEY_IN_HARDWARE] is Status.NOT_APPLICABLE
    identity.set_state(units[2].physical_id, DeviceState.DECOMMISSIONED, actor=ACTOR)
    gone = _statuses(policy, units[2].physical_id)
    assert set(gone.values()) == {Status.NOT_APPLICABLE}


def test_fleet_posture_counts_devices_platform_and_relaxations(
    policy: PolicyService,
    hierarchy: Hierarchy,
    clock: FixedClock,
    symmetric_device: str,
    units: list[PhysicalIdentity],
) -> None:
    fleet = policy.posture.fleet()
    assert fleet.units == 3 and not fleet.truncated
    by_measure = {m.measure: m for m in fleet.measures}
    attestation = by_measure[Measure.ATTESTATION]
    assert attestation.counts == {Status.FAIL: 1, Status.NOT_APPLICABLE: 2}
    assert attestation.status is Status.FAIL
    checks = {r.check: r.status for r in fleet.platform}
    assert checks["ca_keys_protected"] is Status.PASS  # encrypted PKCS#8 files
    assert checks["ca_keys_in_hardware"] is Status.FAIL  # not an HSM
    assert checks["secrets_sealed"] is Status.PASS  # the group key, sealed by the vault
    assert checks["fleet_policy"] is Status.PASS
    assert {r.ref for r in fleet.etsi} == {f"5.{n}" for n in range(1, 14)}

    fleet_wide = policy.relax(
        "min_tls_version",
        "1.2",
        "fleet",
        reason="old gateways on line 3",
        expires="10d",
        actor=ACTOR,
    )
    after = policy.posture.fleet()
    comm = {r.check: r for r in after.platform if r.measure is Measure.SECURE_COMMUNICATION}
    assert comm["fleet_policy"].status is Status.RELAXED
    assert comm["fleet_policy"].relaxations == (fleet_wide.relaxation_id,)
    assert {m.measure: m.status for m in after.measures}[Measure.SECURE_COMMUNICATION] is (
        Status.RELAXED
    )
    assert [r.relaxation_id for r in after.relaxations] == [fleet_wide.relaxation_id]
    as_json = after.to_json()
    assert as_json["relaxations"][0]["status"] == "active"
    assert len(as_json["devices"]) == 3

    clock.advance(timedelta(days=10))
    assert [r.status(clock.now()).value for r in policy.posture.fleet().relaxations] == ["lapsed"]
    clock.advance(timedelta(days=31))  # ended more than 30 days ago: out of the report
    assert policy.posture.fleet().relaxations == ()

"""The policy's key and boot rules at provisioning and EST re-enrollment (`KeyAdmission`,
injected as the composition root does): a software key under the secure baseline is refused
until a conscious relaxation, a forbidden key algorithm is refused, and with
`measured_boot_required` a re-enrollment needs the unit's latest quote to still match an
active golden measurement. Each refusal is a `policy.*` code, audited, nothing else written."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from devicetrust.attestation import AttestationService, BootVerdict
from devicetrust.domain import FixedClock
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService
from devicetrust.pki import Hierarchy, PkiService, Profile
from devicetrust.policy import KeyAdmission, PolicyRefusal, PolicyService
from devicetrust.policy.posture import Measure, Status
from devicetrust.provisioning import (
    Allocation,
    AllocationPolicy,
    DataPlane,
    ProvisioningService,
    RegistrationStatus,
)
from devicetrust.provisioning.reenroll import CertificateReenrollment
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow, RegistrationRow
from devicetrust.vault import Vault
from tests.conftest import snapshot_tables
from tests.policy.conftest import ACTOR
from tests.provisioning.conftest import csr_for, new_key, token_request

POOL = Allocation(AllocationPolicy.POOL, pool_pattern="line-03-left-welding-{01..03}")
REASON = "line-03 arms keep their TLS key in an encrypted file keystore until the TPM refit"
GOLDEN = {"0": "11" * 32, "7": "77" * 32}


@pytest.fixture
def attestation(db: Database, clock: FixedClock) -> AttestationService:
    return AttestationService(db, clock)


@pytest.fixture
def admitted(
    db: Database,
    clock: FixedClock,
    identity: IdentityService,
    pki: PkiService,
    hierarchy: Hierarchy,
    ca_vault: Vault,
    policy: PolicyService,
    attestation: AttestationService,
) -> ProvisioningService:
    return ProvisioningService(
        db,
        clock,
        identity,
        pki,
        ca_vault,
        data_plane=DataPlane("mqtt.example", 8883),
        admission=KeyAdmission(policy, attestation),
    )


@pytest.fixture
def reenrollment(
    db: Database,
    clock: FixedClock,
    pki: PkiService,
    hierarchy: Hierarchy,
    policy: PolicyService,
    attestation: AttestationService,
) -> CertificateReenrollment:
    return CertificateReenrollment(db, clock, pki, admission=KeyAdmission(policy, attestation))


def _refusal_codes(db: Database) -> list[str]:
    with db.read() as session:
        rows = session.scalars(
            select(AuditEntryRow)
            .where(AuditEntryRow.action == "provisioning.refused")
            .order_by(AuditEntryRow.seq)
        )
        return [row.details["code"] for row in rows]


def test_a_software_key_is_refused_until_the_rule_is_relaxed(
    admitted: ProvisioningService,
    policy: PolicyService,
    clock: FixedClock,
    db: Database,
    units: list[PhysicalIdentity],
) -> None:
    admitted.enrollments.create_symmetric_group("line-03", POOL, actor=ACTOR)
    pid = units[0].physical_id
    key = admitted.enrollments.derive_device_key("line-03", pid)
    request = token_request(pid, key, clock)

    before = snapshot_tables(db)
    with pytest.raises(PolicyRefusal) as refused:
        admitted.provision(request)
    assert refused.value.code == "policy.hardware_key_required"
    assert "relax hardware_key_required" in refused.value.message
    after = snapshot_tables(db)
    assert {t for t in after if after[t] != before[t]} == {"audit_log", "audit_head"}
    assert _refusal_codes(db) == ["policy.hardware_key_required"]

    policy.relax(
        "hardware_key_required", False, "enrollment:line-03", reason=REASON, expires="30d",
        actor=ACTOR,
    )  # fmt: skip
    result = admitted.provision(token_request(pid, key, clock))  # a fresh nonce
    assert result.status is RegistrationStatus.ASSIGNED
    measures = {r.measure: r for r in policy.posture.device(pid).measures}
    assert measures[Measure.KEY_IN_HARDWARE].status is Status.RELAXED


def test_a_key_algorithm_outside_the_policy_is_refused(
    admitted: ProvisioningService,
    policy: PolicyService,
    clock: FixedClock,
    db: Database,
    units: list[PhysicalIdentity],
) -> None:
    admitted.enrollments.create_symmetric_group("line-03", POOL, actor=ACTOR)
    policy.relax("hardware_key_required", False, "fleet", reason=REASON, expires="1d", actor=ACTOR)
    policy.set("fleet", {"key_algorithms": ["ec-p384"]}, actor=ACTOR)
    pid = units[1].physical_id
    key = admitted.enrollments.derive_device_key("line-03", pid)

    with pytest.raises(PolicyRefusal) as refused:
        admitted.provision(token_request(pid, key, clock))  # a P-256 CSR
    assert refused.value.code == "policy.key_algorithm_not_allowed"
    with db.read() as session:
        assert session.get(RegistrationRow, pid) is None

    p384 = csr_for(ec.generate_private_key(ec.SECP384R1()))  # type: ignore[arg-type]
    result = admitted.provision(token_request(pid, key, clock, csr=p384))
    assert result.status is RegistrationStatus.ASSIGNED


def test_reenrollment_with_a_software_key_needs_the_relaxation_too(
    reenrollment: CertificateReenrollment,
    policy: PolicyService,
    pki: PkiService,
    units: list[PhysicalIdentity],
) -> None:
    pid = units[2].physical_id
    old = pki.issue_from_csr(csr_for(new_key()), pid, Profile.DEVICE, actor=ACTOR)

    with pytest.raises(PolicyRefusal) as refused:
        reenrollment.reenroll(old.pem.encode(), csr_for(new_key()), source="10.9.0.1")
    assert refused.value.code == "policy.hardware_key_required"

    policy.relax(
        "hardware_key_required", False, f"device:{pid}", reason=REASON, expires="7d",
        actor=ACTOR,
    )  # fmt: skip
    issued = reenrollment.reenroll(old.pem.encode(), csr_for(new_key()), source="10.9.0.1")
    assert issued.renewed_from == old.serial


def test_reenrollment_under_measured_boot_follows_the_golden_measurements(
    reenrollment: CertificateReenrollment,
    policy: PolicyService,
    attestation: AttestationService,
    pki: PkiService,
    clock: FixedClock,
    units: list[PhysicalIdentity],
) -> None:
    pid = units[0].physical_id
    policy.relax("hardware_key_required", False, "fleet", reason=REASON, expires="7d", actor=ACTOR)
    policy.set("fleet", {"measured_boot_required": True}, actor=ACTOR)
    old = pki.issue_from_csr(csr_for(new_key()), pid, Profile.DEVICE, actor=ACTOR)

    with pytest.raises(PolicyRefusal) as never:
        reenrollment.reenroll(old.pem.encode(), csr_for(new_key()), source="10.9.0.1")
    assert never.value.code == "policy.measured_boot_required"

    attestation.add_golden("arm-fw-2.4.1", GOLDEN, actor=ACTOR)
    # What the TPM method hands over once a quote verified (its own tests cover the quote).
    boot = attestation.record(pid, {0: bytes.fromhex("11" * 32), 7: bytes.fromhex("77" * 32)},
                              source="provisioning")  # fmt: skip
    assert boot.verdict is BootVerdict.MATCHED
    renewed = reenrollment.reenroll(old.pem.encode(), csr_for(new_key()), source="10.9.0.1")
    measures = {r.measure: r for r in policy.posture.device(pid).measures}
    assert measures[Measure.MEASURED_BOOT].status is Status.PASS

    attestation.revoke_golden("arm-fw-2.4.1", reason="CVE in the boot loader", actor=ACTOR)
    with pytest.raises(PolicyRefusal) as stale:
        reenrollment.reenroll(renewed.pem.encode(), csr_for(new_key()), source="10.9.0.1")
    assert stale.value.code == "policy.boot_measurements_unknown"
    measures = {r.measure: r for r in policy.posture.device(pid).measures}
    assert measures[Measure.MEASURED_BOOT].status is Status.FAIL

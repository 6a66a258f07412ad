"""The unit's security policy limits provisioning and EST re-enrollment: it caps the
operational certificate (`max_certificate_lifetime`; the audit log names the cap and its
source) and refuses a proven unit calling from outside its `allowed_networks`
(`auth.network_not_allowed`, audited, nothing else changed). Both come from the policy
package (`CertificateLifetimeCaps`, `SourceNetworks`), injected as the composition root does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from sqlalchemy import select

from devicetrust.domain import FixedClock
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService
from devicetrust.pki import Hierarchy, PkiService, Profile
from devicetrust.policy import CertificateLifetimeCaps, PolicyService, SourceNetworks
from devicetrust.provisioning import (
    Allocation,
    AllocationPolicy,
    DataPlane,
    EnrollmentRefused,
    ProvisioningService,
)
from devicetrust.provisioning.reenroll import CertificateReenrollment
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow, RegistrationRow
from devicetrust.vault import Vault
from tests.provisioning.conftest import ACTOR, csr_for, new_key, token_request

POOL = Allocation(AllocationPolicy.POOL, pool_pattern="line-03-left-welding-{01..03}")


@pytest.fixture
def policy(db: Database, clock: FixedClock) -> PolicyService:
    return PolicyService(db, clock)


@pytest.fixture
def capped(
    db: Database,
    clock: FixedClock,
    identity: IdentityService,
    pki: PkiService,
    hierarchy: Hierarchy,
    vault: Vault,
    policy: PolicyService,
) -> ProvisioningService:
    return ProvisioningService(
        db,
        clock,
        identity,
        pki,
        vault,
        data_plane=DataPlane("mqtt.example", 8883),
        lifetime_cap=CertificateLifetimeCaps(policy),
        source_check=SourceNetworks(policy),
    )


@pytest.fixture
def reenrollment(
    db: Database, clock: FixedClock, pki: PkiService, hierarchy: Hierarchy, policy: PolicyService
) -> CertificateReenrollment:
    return CertificateReenrollment(
        db,
        clock,
        pki,
        lifetime_cap=CertificateLifetimeCaps(policy),
        source_check=SourceNetworks(policy),
    )


def _last(db: Database, action: str) -> AuditEntryRow:
    with db.read() as session:
        return session.execute(
            select(AuditEntryRow)
            .where(AuditEntryRow.action == action)
            .order_by(AuditEntryRow.seq.desc())
            .limit(1)
        ).scalar_one()


def _lifetime(pem: str, clock: FixedClock) -> timedelta:
    return x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc - clock.now()


def test_the_enrollment_policy_caps_the_provisioned_certificate(
    capped: ProvisioningService,
    policy: PolicyService,
    clock: FixedClock,
    db: Database,
    units: list[PhysicalIdentity],
) -> None:
    capped.enrollments.create_symmetric_group("line-03", POOL, actor=ACTOR)
    policy.set("enrollment:line-03", {"max_certificate_lifetime": "2h"}, actor=ACTOR)
    pid = units[0].physical_id
    key = capped.enrollments.derive_device_key("line-03", pid)

    result = capped.provision(token_request(pid, key, clock))

    assert result.certificate_pem is not None
    assert _lifetime(result.certificate_pem, clock) == timedelta(hours=2)
    assert result.policy["certificate_lifetime_seconds"] <= 2 * 3600 + 300  # + backdate
    details = _last(db, "device.provisioned").details
    assert details["max_certificate_lifetime"] == 7200
    assert details["max_certificate_lifetime_source"] == "enrollment:line-03"


def test_the_baseline_leaves_the_ca_default(
    capped: ProvisioningService,
    clock: FixedClock,
    db: Database,
    pki: PkiService,
    units: list[PhysicalIdentity],
) -> None:
    capped.enrollments.create_symmetric_group("line-03", POOL, actor=ACTOR)
    pid = units[1].physical_id
    key = capped.enrollments.derive_device_key("line-03", pid)

    result = capped.provision(token_request(pid, key, clock))

    assert result.certificate_pem is not None
    default = pki.policy.lifetime(Profile.DEVICE)  # 24 h, as the baseline's maximum
    assert _lifetime(result.certificate_pem, clock) == default
    assert _last(db, "device.provisioned").details["max_certificate_lifetime_source"] == (
        "baseline"
    )


def test_reenrollment_after_a_tightened_policy_is_capped_and_audited(
    reenrollment: CertificateReenrollment,
    policy: PolicyService,
    pki: PkiService,
    clock: FixedClock,
    db: Database,
    units: list[PhysicalIdentity],
) -> None:
    pid = units[2].physical_id
    old = pki.issue_from_csr(csr_for(new_key()), pid, Profile.DEVICE, actor="op")
    policy.set(f"device:{pid}", {"max_certificate_lifetime": "30m"}, actor=ACTOR)

    issued = reenrollment.reenroll(old.pem.encode(), csr_for(new_key()), source="10.9.0.1")

    assert issued.physical_id == pid
    assert issued.renewed_from == old.serial  # a renewal, still linked to the old one
    assert _lifetime(issued.pem, clock) == timedelta(minutes=30)
    details = _last(db, "provisioning.lifetime_capped").details
    assert details["renewed_from"] == old.serial_hex
    assert details["serial"] == issued.serial_hex
    assert details["max_certificate_lifetime"] == 1800
    assert details["max_certificate_lifetime_source"] == f"device:{pid}"


def test_reenrollment_within_the_policy_is_a_plain_renewal(
    reenrollment: CertificateReenrollment,
    pki: PkiService,
    clock: FixedClock,
    units: list[PhysicalIdentity],
) -> None:
    pid = units[3].physical_id
    old = pki.issue_from_csr(
        csr_for(new_key()), pid, Profile.DEVICE, actor="op", lifetime=timedelta(hours=1)
    )

    issued = reenrollment.reenroll(old.pem.encode(), csr_for(new_key()), source="10.9.0.1")

    assert issued.renewed_from == old.serial
    assert _lifetime(issued.pem, clock) == timedelta(hours=1)


def test_provisioning_from_outside_the_allowed_networks_is_refused(
    capped: ProvisioningService,
    policy: PolicyService,
    clock: FixedClock,
    db: Database,
    units: list[PhysicalIdentity],
) -> None:
    capped.enrollments.create_symmetric_group("line-03", POOL, actor=ACTOR)
    policy.set("enrollment:line-03", {"allowed_networks": ["10.0.0.0/8"]}, actor=ACTOR)
    outsider, insider = units[0].physical_id, units[1].physical_id

    with pytest.raises(EnrollmentRefused) as refused:
        key = capped.enrollments.derive_device_key("line-03", outsider)
        capped.provision(token_request(outsider, key, clock, source="192.0.2.1"))

    assert refused.value.code == "auth.network_not_allowed"
    details = _last(db, "provisioning.refused").details
    assert (details["code"], details["source"]) == ("auth.network_not_allowed", "192.0.2.1")
    with db.read() as session:
        assert session.get(RegistrationRow, outsider) is None
    key = capped.enrollments.derive_device_key("line-03", insider)
    assert capped.provision(token_request(insider, key, clock, source="10.0.0.1")).serial


def test_reenrollment_from_outside_the_allowed_networks_is_refused(
    reenrollment: CertificateReenrollment,
    policy: PolicyService,
    pki: PkiService,
    db: Database,
    units: list[PhysicalIdentity],
) -> None:
    pid = units[2].physical_id
    old = pki.issue_from_csr(csr_for(new_key()), pid, Profile.DEVICE, actor="op")
    policy.set(f"device:{pid}", {"allowed_networks": ["10.9.0.0/16"]}, actor=ACTOR)

    with pytest.raises(EnrollmentRefused) as refused:
        reenrollment.reenroll(old.pem.encode(), csr_for(new_key()), source="192.0.2.1")

    assert refused.value.code == "auth.network_not_allowed"
    assert _last(db, "provisioning.refused").details["code"] == "auth.network_not_allowed"
    issued = reenrollment.reenroll(old.pem.encode(), csr_for(new_key()), source="10.9.0.1")
    assert issued.renewed_from == old.serial

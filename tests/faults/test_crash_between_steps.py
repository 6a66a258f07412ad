"""Crashes in the middle of issuance, replacement and revocation: the database fails at each
write of the operation in turn (see `crash.py`). Every crashed run leaves the database as it
was (no certificate without its record, no half-done replacement), the operation then
succeeds when run again, and revocation owed to a replacement is eventually applied by the
auto-revoker, however often it crashed on the way."""

from __future__ import annotations

from collections.abc import Callable

from cryptography import x509

from devicetrust.domain import DeviceState, FixedClock, ReplacementFate
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.pki import AutoRevoker, Hierarchy, PkiService
from devicetrust.provisioning import (
    Allocation,
    AllocationPolicy,
    ProvisioningService,
    RegistrationStatus,
)
from devicetrust.store.database import Database
from tests.conftest import snapshot_tables
from tests.faults.crash import armed, certificates_consistent, every_write
from tests.pki.certs import ec_key, make_csr
from tests.pki.conftest import ACTOR, NAME
from tests.provisioning.conftest import token_request

R = x509.ReasonFlags


def _unchanged(db: Database) -> Callable[[BaseException], None]:
    before = snapshot_tables(db)

    def check(_exc: BaseException) -> None:
        assert snapshot_tables(db) == before

    return check


def test_issuance_crashed_at_every_write_leaves_nothing(
    db: Database, pki: PkiService, hierarchy: Hierarchy, bound_unit: PhysicalIdentity
) -> None:
    csr = make_csr(ec_key())
    crashes, cert = every_write(
        db, lambda: pki.issue_from_csr(csr, bound_unit.physical_id, actor=ACTOR),
        _unchanged(db))
    assert crashes >= 2  # the certificate row and its audit record at least
    assert pki.current_certificate(bound_unit.physical_id) == cert
    certificates_consistent(db)
    print(f"\nissuance: {crashes} crashed runs, then issued")


def test_provisioning_crashed_at_every_write_leaves_the_unit_as_it_was(
    db: Database, service: ProvisioningService, identity: IdentityService,
    units: list[PhysicalIdentity], clock: FixedClock,
) -> None:
    """Extends `tests/provisioning/test_atomicity.py` (one fault, at the CA) to every write."""
    pool = Allocation(AllocationPolicy.POOL, pool_pattern="line-03-left-welding-{01..03}")
    service.enrollments.create_symmetric_group("line-03", pool, actor=ACTOR)
    pid = units[0].physical_id
    request = token_request(pid, service.enrollments.derive_device_key("line-03", pid), clock)
    before = snapshot_tables(db)

    def crashed(_exc: BaseException) -> None:
        after = snapshot_tables(db)
        changed = {t for t in after if after[t] != before[t]}
        assert changed <= {"audit_log", "audit_head"}, changed  # at most the failure's record
        assert identity.get_physical(pid).state is DeviceState.MANUFACTURED
        assert identity.list_logical() == []
        certificates_consistent(db)

    crashes, result = every_write(db, lambda: service.provision(request), crashed)
    assert result.status is RegistrationStatus.ASSIGNED  # the same token: never burnt
    assert identity.get_physical(pid).state is DeviceState.PROVISIONED
    certificates_consistent(db)
    print(f"\nprovisioning: {crashes} crashed runs, then provisioned")


def test_replacement_crashed_at_every_write_is_never_half_done(
    db: Database, pki: PkiService, hierarchy: Hierarchy, identity: IdentityService,
    bound_unit: PhysicalIdentity,
) -> None:
    old = bound_unit.physical_id
    old_cert = pki.issue_from_csr(make_csr(ec_key()), old, actor=ACTOR)
    new = identity.register(UnitSpec("arm-r7", {}), actor="factory").physical_id
    new_cert = pki.issue_from_csr(make_csr(ec_key()), new, actor=ACTOR)

    crashes, _ = every_write(
        db, lambda: identity.replace(NAME, new, actor=ACTOR, fate=ReplacementFate.DECOMMISSIONED),
        _unchanged(db))
    assert crashes >= 3
    assert identity.get_physical(old).state is DeviceState.DECOMMISSIONED

    # the auto-revoker crashes at each of its writes in turn; each run commits whole events
    def revoker_crashed(_exc: BaseException) -> None:
        certificates_consistent(db)

    # (re-signing CRLs after its commits is best effort: a fault there leaves them stale)
    runs, _ = every_write(db, AutoRevoker(pki).run_once, revoker_crashed,
                          best_effort_after_commit=True)
    while AutoRevoker(pki).run_once().events:  # whatever the last crash left
        runs += 1
    assert pki.get_certificate(old_cert.serial).revocation_reason is R.superseded
    assert pki.get_certificate(new_cert.serial).revocation_reason is R.superseded  # unnamed
    current = pki.current_certificate(new)
    assert current is not None and current.logical_name == NAME
    certificates_consistent(db)
    print(f"\nreplacement: {crashes} crashed runs; auto-revoker: {runs} crashed runs, "
          "then applied")


def test_revocation_crashed_at_every_write_is_whole_and_reaches_the_crl(
    db: Database, pki: PkiService, hierarchy: Hierarchy, bound_unit: PhysicalIdentity
) -> None:
    cert = pki.issue_from_csr(make_csr(ec_key()), bound_unit.physical_id, actor=ACTOR)

    def crashed(_exc: BaseException) -> None:
        certificates_consistent(db)  # revoked with its record, or not revoked at all

    crashes, _ = every_write(
        db, lambda: pki.revoke(cert.serial, "keyCompromise", actor=ACTOR)
        if pki.get_certificate(cert.serial).revocation_reason is None else None, crashed,
        best_effort_after_commit=True)  # the CRL's re-signing, after the commit
    assert pki.get_certificate(cert.serial).revocation_reason is R.key_compromise
    pki.refresh_due()  # a CRL a crash left stale is re-signed by the periodic upkeep
    crl = x509.load_der_x509_crl(pki.latest_crl(hierarchy.issuing.ca_id))
    assert crl.get_revoked_certificate_by_serial_number(cert.serial) is not None
    certificates_consistent(db)
    print(f"\nrevocation: {crashes} crashed runs, then revoked and on the CRL")


def test_a_crl_failure_after_a_committed_revocation_does_not_fail_the_revocation(
    db: Database, pki: PkiService, hierarchy: Hierarchy, bound_unit: PhysicalIdentity
) -> None:
    cert = pki.issue_from_csr(make_csr(ec_key()), bound_unit.physical_id, actor=ACTOR)
    with armed(db, 0, only="UPDATE pki_crls SET crl_number") as fault:
        revoked = pki.revoke(cert.serial, "keyCompromise", actor=ACTOR)
    assert fault.fired and revoked.revocation_reason is R.key_compromise

"""Automatic revocation and re-issuance from identity events (the outbox consumer)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from sqlalchemy import delete, func, insert, select

from devicetrust.domain import DeviceState, FixedClock, ReplacementFate
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.pki import (
    AutoRevoker,
    CertStatus,
    Hierarchy,
    IssuedCertificate,
    PkiService,
    Profile,
)
from devicetrust.store.database import Database
from devicetrust.store.models import ConsumedEventRow, EventCursorRow, OutboxRow
from tests.conftest import snapshot_tables
from tests.pki.certs import ec_key, make_csr, x509_text
from tests.pki.conftest import ACTOR, NAME

R = x509.ReasonFlags


def _reason(pki: PkiService, cert: IssuedCertificate) -> R | None:
    return pki.get_certificate(cert.serial).revocation_reason


def _born_then_bound(
    pki: PkiService, identity: IdentityService, unit: PhysicalIdentity
) -> IssuedCertificate:
    """The factory's birth certificate, then provisioning under `NAME` and activation."""
    birth = pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, Profile.BIRTH, actor="f")
    identity.create_logical(NAME, actor=ACTOR)
    identity.bind(NAME, unit.physical_id, actor=ACTOR)
    identity.set_state(unit.physical_id, DeviceState.ACTIVE, actor=ACTOR)
    return birth


def test_replacement_supersedes_the_old_unit_and_names_the_new_one(
    db: Database,
    pki: PkiService,
    hierarchy: Hierarchy,
    identity: IdentityService,
    unit: PhysicalIdentity,
    tmp_path: Path,
) -> None:
    old = unit.physical_id
    old_birth = _born_then_bound(pki, identity, unit)
    old_device = pki.issue_from_csr(make_csr(ec_key()), old, actor=ACTOR)
    new = identity.register(UnitSpec("arm-r7", {}), actor="factory").physical_id
    new_key = make_csr(ec_key())
    unnamed = pki.issue_from_csr(new_key, new, actor=ACTOR)  # before it took over the name
    assert unnamed.logical_name is None

    identity.replace(NAME, new, actor=ACTOR, fate=ReplacementFate.DECOMMISSIONED)
    report = AutoRevoker(pki).run_once()

    assert _reason(pki, old_birth) is R.superseded
    assert _reason(pki, old_device) is R.superseded
    assert _reason(pki, unnamed) is R.superseded
    current = pki.current_certificate(new)
    assert current is not None and current.logical_name == NAME
    assert current.spki_sha256 == unnamed.spki_sha256 and current.renewed_from == unnamed.serial
    assert f"URI:urn:devicetrust:logical:{NAME}" in x509_text(tmp_path, current.pem)
    assert (report.revoked, report.reissued, report.error) == (3, 1, None)
    # At-least-once: running again changes nothing.
    before = snapshot_tables(db)
    assert AutoRevoker(pki).run_once().events == 0
    assert snapshot_tables(db) == before


def test_decommissioning_revokes_with_cessation_of_operation(
    pki: PkiService, hierarchy: Hierarchy, identity: IdentityService, unit: PhysicalIdentity
) -> None:
    cert = pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, actor=ACTOR)
    identity.set_state(unit.physical_id, DeviceState.DECOMMISSIONED, actor=ACTOR)
    AutoRevoker(pki).run_once()
    assert _reason(pki, cert) is R.cessation_of_operation
    crl = x509.load_der_x509_crl(pki.latest_crl(hierarchy.issuing.ca_id))
    assert crl.get_revoked_certificate_by_serial_number(cert.serial) is not None


def test_suspension_holds_and_reactivation_lifts_only_its_own_holds(
    pki: PkiService,
    hierarchy: Hierarchy,
    identity: IdentityService,
    bound_unit: PhysicalIdentity,
) -> None:
    pid = bound_unit.physical_id
    auto = pki.issue_from_csr(make_csr(ec_key()), pid, actor=ACTOR)
    manual = pki.issue_from_csr(make_csr(ec_key()), pid, actor=ACTOR)
    pki.revoke(manual.serial, "certificateHold", actor=ACTOR)  # an operator's own hold
    status = pki.status_source()
    identity.set_state(pid, DeviceState.SUSPENDED, actor=ACTOR)
    AutoRevoker(pki).run_once()
    held = status.status_of(hierarchy.issuing.certificate, auto.serial)
    assert (held.status, held.reason) == (CertStatus.REVOKED, R.certificate_hold)

    identity.set_state(pid, DeviceState.ACTIVE, actor=ACTOR)
    report = AutoRevoker(pki).run_once()
    assert report.released == 1
    assert status.status_of(hierarchy.issuing.certificate, auto.serial).status is CertStatus.GOOD
    assert _reason(pki, manual) is R.certificate_hold
    crl = x509.load_der_x509_crl(pki.latest_crl(hierarchy.issuing.ca_id))
    assert [entry.serial_number for entry in crl] == [manual.serial]


def test_quarantine_turns_holds_into_permanent_revocations(
    pki: PkiService,
    hierarchy: Hierarchy,
    identity: IdentityService,
    bound_unit: PhysicalIdentity,
) -> None:
    pid = bound_unit.physical_id
    cert = pki.issue_from_csr(make_csr(ec_key()), pid, actor=ACTOR)
    identity.set_state(pid, DeviceState.SUSPENDED, actor=ACTOR)
    identity.set_state(pid, DeviceState.QUARANTINED, actor=ACTOR)
    AutoRevoker(pki).run_once()
    assert _reason(pki, cert) is R.privilege_withdrawn
    identity.set_state(pid, DeviceState.SUSPENDED, actor=ACTOR, release=True)
    identity.set_state(pid, DeviceState.ACTIVE, actor=ACTOR)
    assert AutoRevoker(pki).run_once().released == 0
    assert _reason(pki, cert) is R.privilege_withdrawn


def test_rename_reissues_with_the_new_name_and_the_same_key(
    pki: PkiService,
    hierarchy: Hierarchy,
    identity: IdentityService,
    unit: PhysicalIdentity,
) -> None:
    pid = unit.physical_id
    birth = _born_then_bound(pki, identity, unit)
    old = pki.issue_from_csr(make_csr(ec_key()), pid, actor=ACTOR)
    identity.rename(NAME, "line-04-right-welding-01", actor=ACTOR)
    assert AutoRevoker(pki).run_once().reissued == 1
    new = pki.current_certificate(pid)
    assert new is not None and new.logical_name == "line-04-right-welding-01"
    assert new.spki_sha256 == old.spki_sha256
    assert _reason(pki, old) is R.superseded
    assert _reason(pki, birth) is None  # birth certificates carry no logical name
    names = new.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    uris = names.value.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == [f"urn:uuid:{pid}", "urn:devicetrust:logical:line-04-right-welding-01"]


def test_transfer_moves_the_name_between_certificates(
    pki: PkiService,
    hierarchy: Hierarchy,
    identity: IdentityService,
    bound_unit: PhysicalIdentity,
) -> None:
    other = identity.register(UnitSpec("arm-r7", {}), actor="factory").physical_id
    from_cert = pki.issue_from_csr(make_csr(ec_key()), bound_unit.physical_id, actor=ACTOR)
    to_cert = pki.issue_from_csr(make_csr(ec_key()), other, actor=ACTOR)
    identity.transfer(NAME, other, actor=ACTOR)
    AutoRevoker(pki).run_once()
    left = pki.current_certificate(bound_unit.physical_id)
    took = pki.current_certificate(other)
    assert left is not None and left.logical_name is None
    assert took is not None and took.logical_name == NAME
    assert _reason(pki, from_cert) is R.superseded and _reason(pki, to_cert) is R.superseded


def test_a_rename_during_suspension_is_applied_on_reactivation(
    pki: PkiService,
    hierarchy: Hierarchy,
    identity: IdentityService,
    bound_unit: PhysicalIdentity,
) -> None:
    pid = bound_unit.physical_id
    cert = pki.issue_from_csr(make_csr(ec_key()), pid, actor=ACTOR)
    identity.set_state(pid, DeviceState.SUSPENDED, actor=ACTOR)
    identity.rename(NAME, "line-05-spare-01", actor=ACTOR)
    identity.set_state(pid, DeviceState.ACTIVE, actor=ACTOR)
    report = AutoRevoker(pki).run_once()
    assert (report.released, report.reissued) == (1, 1)
    assert _reason(pki, cert) is R.superseded
    current = pki.current_certificate(pid)
    assert current is not None and current.logical_name == "line-05-spare-01"


def test_the_cursor_passes_only_settled_events_and_late_commits_are_not_lost(
    db: Database,
    pki: PkiService,
    hierarchy: Hierarchy,
    identity: IdentityService,
    clock: FixedClock,
) -> None:
    late_unit, unit = (identity.register(UnitSpec("arm", {}), actor="f") for _ in range(2))
    late_cert = pki.issue_from_csr(make_csr(ec_key()), late_unit.physical_id, actor=ACTOR)
    # Reserve an outbox id, as a transaction that has not committed yet would hold one (a
    # filler row after it keeps SQLite from handing the id out again).
    with db.engine.begin() as conn:
        gap, _filler = (
            conn.execute(
                insert(OutboxRow)
                .values(
                    event_id=str(uuid.uuid4()),
                    type="api_key.created",
                    occurred_at=clock.now(),
                    subject="x",
                    payload={},
                    fanned_out=True,
                )
                .returning(OutboxRow.id)
            ).scalar_one()
            for _ in range(2)
        )
        conn.execute(delete(OutboxRow).where(OutboxRow.id == gap))
    identity.set_state(unit.physical_id, DeviceState.DECOMMISSIONED, actor=ACTOR)
    revoker = AutoRevoker(pki)
    assert revoker.run_once().events == 1
    # The "late" transaction commits now, under the id it drew before the later one.
    with db.engine.begin() as conn:
        conn.execute(
            insert(OutboxRow).values(
                id=gap,
                event_id=str(uuid.uuid4()),
                type="device.state_changed",
                occurred_at=clock.now(),
                subject=late_unit.physical_id,
                payload={
                    "physical_id": late_unit.physical_id,
                    "from": "manufactured",
                    "to": "quarantined",
                    "reason": "late",
                },
                fanned_out=True,
            )
        )
    assert revoker.run_once().events == 1
    assert _reason(pki, late_cert) is R.privilege_withdrawn
    clock.advance(timedelta(minutes=11))
    assert revoker.run_once().events == 0
    with db.engine.connect() as conn:
        cursor = conn.execute(select(EventCursorRow.outbox_id)).scalar_one()
        newest = conn.execute(select(func.max(OutboxRow.id))).scalar_one()
        consumed = conn.execute(select(func.count()).select_from(ConsumedEventRow)).scalar()
    assert (cursor, consumed) == (newest, 0)


def test_reissue_after_a_rename_is_capped_by_the_injected_lifetime_cap(
    pki: PkiService,
    hierarchy: Hierarchy,
    identity: IdentityService,
    unit: PhysicalIdentity,
) -> None:
    """The composition root passes the unit's security-policy cap (`Platform.auto_revoker`);
    a re-issued certificate never outlives it, whatever the CA's default."""
    pid = unit.physical_id
    _born_then_bound(pki, identity, unit)
    old = pki.issue_from_csr(make_csr(ec_key()), pid, actor=ACTOR)
    identity.rename(NAME, "line-04-right-welding-01", actor=ACTOR)
    asked: list[str] = []

    def cap(physical_id: str) -> timedelta:
        asked.append(physical_id)
        return timedelta(minutes=20)

    assert AutoRevoker(pki, lifetime_cap=cap).run_once().reissued == 1
    new = pki.current_certificate(pid)
    assert new is not None and new.renewed_from == old.serial
    lifetime = new.certificate.not_valid_after_utc - new.certificate.not_valid_before_utc
    assert lifetime - pki.policy.clock_skew == timedelta(minutes=20)
    assert set(asked) == {pid}

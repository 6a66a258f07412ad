"""`AttestationService` on SQLite and PostgreSQL: golden measurements added, refused, revoked
and listed; verified quotes judged and kept, newest first; every change one audit entry and
one outbox event, and every refusal a typed error that changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from devicetrust.attestation import AttestationService, BootVerdict
from devicetrust.domain import FixedClock
from devicetrust.domain.errors import Conflict, InvalidInput, NotFound
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.events import AuditLog
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow, OutboxRow
from tests.attestation.conftest import ACTOR, boot, hexed, measurement
from tests.conftest import snapshot_tables

REASON = "boot loader CVE, fixed in 2.4.2"
UNKNOWN_UNIT = "5d7e0c0e-0000-4000-8000-000000000000"


def _audit(db: Database, action: str) -> list[AuditEntryRow]:
    with db.read() as session:
        rows = session.scalars(select(AuditEntryRow).order_by(AuditEntryRow.seq))
        return [row for row in rows if row.action == action]


def _events(db: Database, event_type: str) -> list[OutboxRow]:
    with db.read() as session:
        rows = session.scalars(select(OutboxRow).order_by(OutboxRow.id))
        return [row for row in rows if row.type == event_type]


def test_add_keeps_the_values_and_audits_who_added_them(
    attestation: AttestationService, db: Database, clock: FixedClock
) -> None:
    golden = attestation.add_golden("arm-fw-2.4.1", hexed(boot()), note="line 3", actor=ACTOR)
    assert golden.pcrs == boot() and golden.active
    assert (golden.created_at, golden.created_by, golden.note) == (clock.now(), ACTOR, "line 3")
    assert attestation.goldens() == [golden]
    audit = _audit(db, "golden_measurement.added")
    assert [(a.actor, a.subject) for a in audit] == [(ACTOR, "golden:arm-fw-2.4.1")]
    assert audit[0].details["pcrs"] == hexed(boot())
    assert [e.subject for e in _events(db, "golden_measurement.added")] == ["golden:arm-fw-2.4.1"]
    assert AuditLog(db).verify().ok


def test_a_name_is_never_reused_and_bad_values_are_refused_changing_nothing(
    attestation: AttestationService, db: Database
) -> None:
    attestation.add_golden("arm-fw-2.4.1", boot(), actor=ACTOR)
    attestation.revoke_golden("arm-fw-2.4.1", reason=REASON, actor=ACTOR)
    before = snapshot_tables(db)
    with pytest.raises(Conflict) as taken:
        attestation.add_golden("arm-fw-2.4.1", {"0": "00" * 32}, actor=ACTOR)
    assert taken.value.code == "attestation.golden_exists"
    for name, pcrs, code in [
        ("g", {"0": "00" * 31}, "attestation.invalid_pcrs"),
        ("g", {"24": "00" * 32}, "attestation.invalid_pcrs"),
        ("g", {}, "attestation.invalid_pcrs"),
        (" g", {"0": "00" * 32}, "attestation.invalid_name"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            attestation.add_golden(name, pcrs, actor=ACTOR)
        assert refused.value.code == code
    assert snapshot_tables(db) == before


def test_revoke_once_with_a_reason_then_it_lists_only_with_revoked_ones(
    attestation: AttestationService, db: Database, clock: FixedClock
) -> None:
    attestation.add_golden("arm-fw-2.4.1", boot(), actor=ACTOR)
    attestation.add_golden("arm-fw-2.4.2", boot(pcr0=measurement("uefi 2.4.2")), actor=ACTOR)
    clock.advance(timedelta(days=3))
    revoked = attestation.revoke_golden("arm-fw-2.4.1", reason=f"  {REASON} ", actor="operator:b")
    assert not revoked.active
    assert (revoked.revoked_at, revoked.revoked_by) == (clock.now(), "operator:b")
    assert revoked.revoke_reason == REASON
    assert [g.name for g in attestation.goldens()] == ["arm-fw-2.4.2"]
    listed = attestation.goldens(include_revoked=True)
    assert [(g.name, g.active) for g in listed] == [("arm-fw-2.4.1", False), ("arm-fw-2.4.2", True)]
    audit = _audit(db, "golden_measurement.revoked")
    assert [(a.actor, a.details["revoke_reason"]) for a in audit] == [("operator:b", REASON)]
    assert len(_events(db, "golden_measurement.revoked")) == 1

    before = snapshot_tables(db)
    refusals: list[tuple[str, str, type[Exception], str]] = [
        ("arm-fw-2.4.1", REASON, Conflict, "attestation.golden_revoked"),
        ("arm-fw-9", REASON, NotFound, "attestation.golden_not_found"),
        ("arm-fw-2.4.2", "   ", InvalidInput, "attestation.reason_required"),
        ("arm-fw-2.4.2", "x" * 501, InvalidInput, "attestation.reason_required"),
    ]
    for name, reason, kind, code in refusals:
        with pytest.raises(kind) as refused:
            attestation.revoke_golden(name, reason=reason, actor=ACTOR)
        assert getattr(refused.value, "code", None) == code
    assert snapshot_tables(db) == before


def test_record_judges_against_the_active_goldens_of_the_moment(
    attestation: AttestationService,
    db: Database,
    clock: FixedClock,
    units: list[PhysicalIdentity],
) -> None:
    pid = units[0].physical_id
    first = attestation.record(pid, boot(), source="provisioning")
    assert first.verdict is BootVerdict.NO_GOLDEN and first.golden is None
    attestation.add_golden("arm-fw-2.4.1", {i: boot()[i] for i in (0, 4, 7)}, actor=ACTOR)
    clock.advance(timedelta(minutes=1))
    matched = attestation.record(pid, boot(), source="provisioning")
    assert matched.ok and matched.golden == "arm-fw-2.4.1"
    clock.advance(timedelta(minutes=1))
    tampered = attestation.record(pid, boot(pcr4=measurement("evil grub")), source="est")
    assert tampered.verdict is BootVerdict.UNKNOWN
    assert tampered.detail.endswith("nearest arm-fw-2.4.1 differs in PCR 4")
    attestation.revoke_golden("arm-fw-2.4.1", reason=REASON, actor=ACTOR)
    attestation.add_golden("other", {0: measurement("another firmware")}, actor=ACTOR)
    clock.advance(timedelta(minutes=1))
    after = attestation.record(pid, boot(), source="provisioning")
    assert after.verdict is BootVerdict.UNKNOWN  # the revoked golden no longer counts
    # what was recorded keeps its verdict: revocation does not rewrite history
    assert [a.verdict for a in attestation.history(pid)] == [
        BootVerdict.UNKNOWN,
        BootVerdict.UNKNOWN,
        BootVerdict.MATCHED,
        BootVerdict.NO_GOLDEN,
    ]

    audit = _audit(db, "device.boot_attested")
    assert [(a.actor, a.subject) for a in audit] == [(f"device:{pid}", pid)] * 4
    assert [a.details["source"] for a in audit] == ["provisioning"] * 2 + ["est", "provisioning"]
    assert [a.details["verdict"] for a in audit] == [
        "no_golden_measurements",
        "matched",
        "unknown_measurements",
        "unknown_measurements",
    ]
    assert len(_events(db, "device.boot_attested")) == 4
    assert AuditLog(db).verify().ok


def test_history_is_newest_first_per_unit_and_bounded(
    attestation: AttestationService, clock: FixedClock, units: list[PhysicalIdentity]
) -> None:
    pid, other = units[0].physical_id, units[1].physical_id
    assert attestation.history(pid) == [] and attestation.latest(pid) is None
    recorded = []
    for n in range(4):
        clock.advance(timedelta(minutes=5))
        recorded.append(attestation.record(pid, boot(pcr9=measurement(f"boot {n}")), source="t"))
    attestation.record(other, boot(), source="t")
    history = attestation.history(pid)
    assert [a.attestation_id for a in history] == [a.attestation_id for a in reversed(recorded)]
    assert [a.attested_at for a in history] == sorted(
        (a.attested_at for a in history), reverse=True
    )
    assert attestation.latest(pid) == recorded[-1]
    assert attestation.history(pid.upper(), limit=2) == history[:2]
    assert [a.physical_id for a in attestation.history(other)] == [other]
    for limit in (0, 1001):
        with pytest.raises(InvalidInput) as refused:
            attestation.history(pid, limit=limit)
        assert refused.value.code == "request.invalid_page"


def test_unknown_or_malformed_units_are_refused(
    attestation: AttestationService, db: Database
) -> None:
    before = snapshot_tables(db)
    with pytest.raises(NotFound) as unknown:
        attestation.record(UNKNOWN_UNIT, boot(), source="t")
    assert unknown.value.code == "identity.physical_not_found"
    with pytest.raises(NotFound):
        attestation.history(UNKNOWN_UNIT)
    with pytest.raises(InvalidInput) as malformed:
        attestation.history("not-a-uuid")
    assert malformed.value.code == "identity.invalid_physical_id"
    assert snapshot_tables(db) == before


def test_a_reference_units_latest_quote_becomes_a_golden_measurement(
    attestation: AttestationService,
    db: Database,
    clock: FixedClock,
    units: list[PhysicalIdentity],
) -> None:
    reference, fleet = units[0].physical_id, units[1].physical_id
    with pytest.raises(NotFound) as never:
        attestation.golden_from_unit("arm-fw-2.4.2", reference, actor=ACTOR)
    assert never.value.code == "attestation.no_attestation"
    attestation.record(reference, boot(), source="provisioning")
    new_firmware = boot(pcr0=measurement("uefi 2.4.2"))
    clock.advance(timedelta(hours=1))  # updated and rebooted
    attestation.record(reference, new_firmware, source="provisioning")
    golden = attestation.golden_from_unit("arm-fw-2.4.2", reference, actor=ACTOR)
    assert golden.pcrs == new_firmware and reference in golden.note
    assert attestation.quote_selection() == tuple(range(8))
    assert attestation.record(fleet, new_firmware, source="provisioning").golden == "arm-fw-2.4.2"
    assert not attestation.record(fleet, boot(), source="provisioning").ok
    assert [a.subject for a in _audit(db, "golden_measurement.added")] == ["golden:arm-fw-2.4.2"]


def test_quote_selection_follows_the_active_goldens(attestation: AttestationService) -> None:
    assert attestation.quote_selection() == (0, 1, 2, 3, 4, 5, 6, 7)
    attestation.add_golden("secure-boot", {7: boot()[7]}, actor=ACTOR)
    attestation.add_golden("kernel", {0: boot()[0], 9: measurement("kernel")}, actor=ACTOR)
    assert attestation.quote_selection() == (0, 7, 9)
    attestation.revoke_golden("kernel", reason=REASON, actor=ACTOR)
    assert attestation.quote_selection() == (7,)

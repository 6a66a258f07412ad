"""The audit log: reading it, and catching every kind of tampering with the hash chain."""

from __future__ import annotations

import pytest
from sqlalchemy import text, update

from devicetrust.domain.audit import first_break
from devicetrust.domain.clock import FixedClock
from devicetrust.domain.errors import InvalidInput
from devicetrust.events import AuditLog
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow

ENTRIES = 7


@pytest.fixture
def units(db: Database, clock: FixedClock) -> list[str]:
    """Seven audited changes (one per unit registered)."""
    svc = IdentityService(db, clock)
    specs = [UnitSpec("kuka-kr-16", {"controller": f"C-{i}"}) for i in range(ENTRIES)]
    return [u.physical_id for u in svc.register_batch(specs, actor="factory")]


@pytest.fixture
def log(db: Database) -> AuditLog:
    return AuditLog(db, chunk_size=3)  # small chunks: the stream crosses several of them


def _sql(db: Database, statement: str, **params: object) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(statement), params)


def test_intact_chain_verifies(log: AuditLog, units: list[str]) -> None:
    result = log.verify()
    assert (result.ok, result.count, result.first_break, result.head_seq) == (
        True,
        ENTRIES,
        None,
        ENTRIES,
    )


def test_empty_log_verifies(log: AuditLog) -> None:
    result = log.verify()
    assert result.ok and result.count == 0


def test_entries_page_in_order_and_filter_by_subject(log: AuditLog, units: list[str]) -> None:
    first = log.entries(limit=4)
    rest = log.entries(after_seq=first[-1].seq, limit=100)
    assert [e.seq for e in first + rest] == list(range(1, ENTRIES + 1))
    assert [e.subject for e in first + rest] == units
    [only] = log.entries(subject=units[2])
    assert (only.seq, only.action, only.actor) == (3, "identity.created", "factory")
    assert first_break(first + rest) is None
    with pytest.raises(InvalidInput):
        log.entries(limit=0)
    with pytest.raises(InvalidInput):
        log.entries(after_seq=-1)


def test_edited_entry_is_named(db: Database, log: AuditLog, units: list[str]) -> None:
    _sql(db, "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 4")
    result = log.verify()
    assert not result.ok and result.count == 3
    assert result.first_break is not None and result.first_break.seq == 4
    assert "edited" in result.first_break.reason


def test_edited_details_are_caught(db: Database, log: AuditLog, units: list[str]) -> None:
    with db.engine.begin() as conn:
        conn.execute(
            update(AuditEntryRow)
            .where(AuditEntryRow.seq == 6)
            .values(details={"physical_id": units[0], "model": "forged"})
        )
    broken = log.verify().first_break
    assert broken is not None and broken.seq == 6


def test_deleted_entry_is_named(db: Database, log: AuditLog, units: list[str]) -> None:
    _sql(db, "DELETE FROM audit_log WHERE seq = 5")
    result = log.verify()
    assert result.first_break is not None
    assert result.first_break.seq == 5 and "missing" in result.first_break.reason


def test_reordered_entries_are_named(db: Database, log: AuditLog, units: list[str]) -> None:
    # Swap entries 2 and 3 in place (through a free sequence number).
    _sql(db, "UPDATE audit_log SET seq = -2 WHERE seq = 2")
    _sql(db, "UPDATE audit_log SET seq = 2 WHERE seq = 3")
    _sql(db, "UPDATE audit_log SET seq = 3 WHERE seq = -2")
    result = log.verify()
    assert result.first_break is not None and result.first_break.seq == 2
    assert result.count == 1


def test_truncated_tail_is_named(db: Database, log: AuditLog, units: list[str]) -> None:
    _sql(db, "DELETE FROM audit_log WHERE seq >= 6")
    result = log.verify()
    assert result.first_break is not None and result.first_break.seq == 6
    assert result.count == 5
    assert "head says 7" in result.first_break.reason


def test_truncated_tail_with_forged_head_seq_is_caught_by_the_head_hash(
    db: Database, log: AuditLog, units: list[str]
) -> None:
    _sql(db, "DELETE FROM audit_log WHERE seq = 7")
    _sql(db, "UPDATE audit_head SET seq = 6")
    broken = log.verify().first_break
    assert broken is not None and broken.seq == 6 and "head hash" in broken.reason


def test_entry_appended_past_the_head_without_the_journal_is_caught(
    db: Database, log: AuditLog, units: list[str]
) -> None:
    _sql(
        db,
        "INSERT INTO audit_log (seq, occurred_at, actor, action, subject, details, prev_hash, "
        "hash) SELECT 8, occurred_at, actor, action, subject, details, prev_hash, hash "
        "FROM audit_log WHERE seq = 7",
    )
    broken = log.verify().first_break
    assert broken is not None and broken.seq == 8


def test_missing_head_is_reported(db: Database, log: AuditLog, units: list[str]) -> None:
    _sql(db, "DELETE FROM audit_head")
    broken = log.verify().first_break
    assert broken is not None and "head record is missing" in broken.reason

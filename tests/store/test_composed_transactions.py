"""Composed operations: services called inside an open transaction join it, commit with it,
and roll back with it; a savepoint undoes only its own part, its audit entries and outbox
events included. Events are written at commit, in the order they were recorded."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from devicetrust.domain.clock import FixedClock
from devicetrust.domain.errors import Conflict
from devicetrust.events import AuditLog
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow, LogicalIdentityRow, OutboxRow


class Boom(Exception):
    pass


def _count(db: Database, model: type) -> int:
    with db.read() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_joined_operations_commit_together_and_roll_back_together(
    db: Database, clock: FixedClock
) -> None:
    svc = IdentityService(db, clock)
    unit = svc.register(UnitSpec("arm", {}), actor="t")
    audited = _count(db, AuditEntryRow)
    with pytest.raises(Boom), db.transaction():
        svc.create_logical("line-03-left-welding-12", actor="t")
        svc.bind("line-03-left-welding-12", unit.physical_id, actor="t")
        raise Boom
    assert _count(db, LogicalIdentityRow) == 0
    assert _count(db, AuditEntryRow) == audited
    assert svc.get_physical(unit.physical_id).state == "manufactured"

    with db.transaction():
        svc.create_logical("line-03-left-welding-12", actor="t")
        # a read inside the transaction sees its own uncommitted writes
        svc.bind("line-03-left-welding-12", unit.physical_id, actor="t")
    assert svc.get_physical(unit.physical_id).state == "provisioned"
    assert _count(db, AuditEntryRow) > audited + 1  # create, bind (and its state change)
    assert AuditLog(db).verify().ok


def test_a_failed_savepoint_undoes_only_its_part_and_its_audit_entries(
    db: Database, clock: FixedClock
) -> None:
    svc = IdentityService(db, clock)
    svc.create_logical("taken", actor="t")
    audited = _count(db, AuditEntryRow)
    with db.transaction():
        svc.create_logical("kept", actor="t")
        with pytest.raises(Conflict), db.savepoint():
            svc.create_logical("undone", actor="t")
            svc.create_logical("taken", actor="t")  # refused: the savepoint is undone
    names = {n.name for n in svc.list_logical()}
    assert names == {"taken", "kept"}
    assert _count(db, AuditEntryRow) == audited + 1  # "undone" left no audit entry
    assert AuditLog(db).verify().ok


def _events(db: Database) -> list[tuple[int, str, str]]:
    with db.read() as session:
        rows = session.execute(
            select(OutboxRow.id, OutboxRow.type, OutboxRow.subject).order_by(OutboxRow.id)
        ).all()
    return [(row.id, row.type, row.subject) for row in rows]


def test_a_failed_savepoint_leaves_no_outbox_event_and_the_rest_keep_their_order(
    db: Database, clock: FixedClock
) -> None:
    svc = IdentityService(db, clock)
    svc.create_logical("taken", actor="t")
    before = len(_events(db))
    with db.transaction():
        svc.create_logical("first", actor="t")
        with pytest.raises(Conflict), db.savepoint():
            svc.create_logical("undone", actor="t")
            svc.create_logical("taken", actor="t")
        svc.create_logical("second", actor="t")
    events = _events(db)[before:]
    assert [(kind, subject) for _, kind, subject in events] == [
        ("logical.created", "first"),
        ("logical.created", "second"),
    ]
    ids = [event_id for event_id, _, _ in events]
    assert ids == sorted(ids)  # numbered at commit, in the order they were recorded


def test_a_rolled_back_transaction_writes_no_outbox_event(db: Database, clock: FixedClock) -> None:
    svc = IdentityService(db, clock)
    before = len(_events(db))
    with pytest.raises(Boom), db.transaction():
        svc.create_logical("never", actor="t")
        raise Boom
    assert len(_events(db)) == before
    with db.transaction():
        svc.create_logical("later", actor="t")  # the next transaction starts clean
    assert [subject for _, _, subject in _events(db)[before:]] == ["later"]


def test_a_savepoint_outside_a_transaction_is_a_transaction(
    db: Database, clock: FixedClock
) -> None:
    svc = IdentityService(db, clock)
    with db.savepoint():
        svc.create_logical("alone", actor="t")
    assert [n.name for n in svc.list_logical()] == ["alone"]

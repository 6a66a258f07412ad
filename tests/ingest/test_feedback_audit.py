"""Feedback bookkeeping: an operator's send is audited (who, to which identity and unit,
the payload's keys and size, never its values), and the unit's acknowledgment records
`delivered_at` -- only for the unit it was published to (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from devicetrust.domain import FixedClock
from devicetrust.domain.errors import Conflict
from devicetrust.events import AuditLog
from devicetrust.identity import IdentityService
from devicetrust.ingest import FeedbackQueue, FeedbackStatus
from devicetrust.ingest.feedback import SENT_ACTION
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow

from .test_store import ACTOR, unit

NAME = "line-03-left-welding-12"


def test_sending_feedback_is_audited_without_its_values(
    db: Database, clock: FixedClock, identity: IdentityService
) -> None:
    holder = unit(identity, NAME)
    queue = FeedbackQueue(db, clock)
    sent = queue.send(NAME, {"speed": 0.8, "maintenance_pin": "4711"}, actor="operator:alice",
                      ttl=timedelta(minutes=30))
    with db.read() as session:
        entry = session.execute(
            select(AuditEntryRow).where(AuditEntryRow.action == SENT_ACTION)
        ).scalar_one()
    assert (entry.actor, entry.subject) == ("operator:alice", NAME)
    assert entry.details["feedback_id"] == sent.feedback_id
    assert entry.details["unit"] == holder
    assert entry.details["keys"] == ["maintenance_pin", "speed"]
    assert entry.details["ttl_seconds"] == 1800
    assert "4711" not in str(entry.details) and "0.8" not in str(entry.details)
    assert AuditLog(db).verify().ok


def test_a_refused_send_is_not_audited(
    db: Database, clock: FixedClock, identity: IdentityService
) -> None:
    unit(identity, NAME)
    queue = FeedbackQueue(db, clock, max_pending=1)
    queue.send(NAME, {"a": 1}, actor=ACTOR)
    with pytest.raises(Conflict) as refused:
        queue.send(NAME, {"a": 2}, actor=ACTOR)
    assert refused.value.code == "ingest.feedback_queue_full"
    with db.read() as session:
        entries = session.execute(
            select(AuditEntryRow).where(AuditEntryRow.action == SENT_ACTION)
        ).scalars().all()
    assert len(entries) == 1


def test_the_acknowledgment_records_delivered_at(
    db: Database, clock: FixedClock, identity: IdentityService
) -> None:
    holder = unit(identity, NAME)
    other = unit(identity)
    queue = FeedbackQueue(db, clock)
    sent = queue.send(NAME, {"speed": 0.8}, actor=ACTOR)
    assert sent.delivered_at is None
    [routed] = queue.due()
    queue.mark_published(sent.feedback_id, routed.physical_id)
    clock.advance(timedelta(seconds=3))
    assert not queue.mark_delivered(sent.feedback_id, other)  # not the unit it went to
    assert queue.get(sent.feedback_id).delivered_at is None
    assert queue.mark_delivered(sent.feedback_id, holder)
    done = queue.get(sent.feedback_id)
    assert done.status is FeedbackStatus.DELIVERED
    assert done.delivered_at == clock.now()
    assert done.to_json()["delivered_at"] == clock.now().isoformat()
    assert not queue.mark_delivered(sent.feedback_id, holder)  # once

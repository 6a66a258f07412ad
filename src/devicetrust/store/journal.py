"""Writes the audit entry and the outbox event of a change, inside the change's transaction.

Never commits by itself: the caller's transaction makes the change, its audit entry and its
event durable together. Both are queued in the session and written at commit
(`seal_pending`, hooked to `before_commit` by `Database`) with plain Core statements, in the
order they were queued: the outbox events as one multi-row INSERT, then the audit entries,
chained under a lock on the single audit head row (SELECT ... FOR UPDATE on PostgreSQL;
SQLite transactions are already serialised by BEGIN IMMEDIATE), so concurrent writers can
never fork the hash chain. A savepoint that rolls back forgets what it queued
(`pending_mark` / `rewind_pending`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from devicetrust.domain.audit import GENESIS_HASH, entry_hash
from devicetrust.domain.events import EventType
from devicetrust.store.models import AuditEntryRow, AuditHeadRow, OutboxRow

_HEAD_ID = 1
_PENDING_KEY = "devicetrust.audit_pending"
_EVENTS_KEY = "devicetrust.outbox_pending"

# Core statements on the tables, not the ORM unit of work: nothing here needs identity
# tracking, and these rows are written once, at commit.
_AUDIT = cast(Table, AuditEntryRow.__table__)
_HEAD = cast(Table, AuditHeadRow.__table__)
_OUTBOX = cast(Table, OutboxRow.__table__)
_LOCK_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == _HEAD_ID).with_for_update()
_INSERT_AUDIT = insert(_AUDIT)
_INSERT_OUTBOX = insert(_OUTBOX)
_MOVE_HEAD = update(_HEAD).where(_HEAD.c.id == _HEAD_ID)


@dataclass(frozen=True, slots=True)
class _Pending:
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """An outbox event of the open transaction; written (and numbered) at its commit."""

    event_id: str
    type: str
    occurred_at: datetime
    subject: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PendingMark:
    """How much the transaction had queued at a point (see `rewind_pending`)."""

    audit: int
    events: int


def append_audit(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, Any],
) -> None:
    """Queue an audit entry; it is chained and written when the transaction commits."""
    pending: list[_Pending] = session.info.setdefault(_PENDING_KEY, [])
    pending.append(_Pending(at, actor, action, subject, dict(details)))


def pending_mark(session: Session) -> PendingMark:
    """How many audit entries and events the transaction has queued so far."""
    info = session.info
    return PendingMark(len(info.get(_PENDING_KEY, ())), len(info.get(_EVENTS_KEY, ())))


def rewind_pending(session: Session, mark: PendingMark) -> None:
    """Forget the entries and events queued after `mark`: their savepoint was rolled back."""
    pending: list[_Pending] | None = session.info.get(_PENDING_KEY)
    if pending is not None:
        del pending[mark.audit :]
    events: list[QueuedEvent] | None = session.info.get(_EVENTS_KEY)
    if events is not None:
        del events[mark.events :]


def seal_pending(session: Session) -> None:
    """Write the transaction's queued events and chain its queued audit entries onto the
    log (`before_commit` hook).

    The head row is locked here, at the very end of the transaction and after the session's
    own changes are flushed, so concurrent writers wait for each other only for these few
    statements and the commit, never for the work (signing, checks) done before them.
    """
    if session.in_nested_transaction():
        return  # a savepoint is released: the entries wait for the real commit
    events: list[QueuedEvent] | None = session.info.pop(_EVENTS_KEY, None)
    pending: list[_Pending] | None = session.info.pop(_PENDING_KEY, None)
    if not events and not pending:
        return
    session.flush()
    if events:
        session.execute(
            _INSERT_OUTBOX,
            [
                {
                    "event_id": e.event_id,
                    "type": e.type,
                    "occurred_at": e.occurred_at,
                    "subject": e.subject,
                    "payload": e.payload,
                    "fanned_out": False,
                }
                for e in events
            ],
        )
    if pending:
        _chain(session, pending)


def _chain(session: Session, pending: list[_Pending]) -> None:
    head = session.execute(_LOCK_HEAD).one_or_none()
    seq, prev = (head.seq, head.hash) if head is not None else (0, GENESIS_HASH)
    rows: list[dict[str, Any]] = []
    for entry in pending:
        seq += 1
        digest = entry_hash(
            prev, seq, entry.at, entry.actor, entry.action, entry.subject, entry.details
        )
        rows.append(
            {
                "seq": seq,
                "occurred_at": entry.at,
                "actor": entry.actor,
                "action": entry.action,
                "subject": entry.subject,
                "details": entry.details,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    session.execute(_INSERT_AUDIT, rows)
    if head is None:
        session.execute(insert(_HEAD).values(id=_HEAD_ID, seq=seq, hash=prev))
    else:
        session.execute(_MOVE_HEAD.values(seq=seq, hash=prev))


def emit_event(
    session: Session,
    *,
    at: datetime,
    event_type: EventType,
    subject: str,
    payload: Mapping[str, Any],
) -> QueuedEvent:
    """Queue an outbox event; it is written when the transaction commits."""
    event = QueuedEvent(str(uuid.uuid4()), event_type.value, at, subject, dict(payload))
    events: list[QueuedEvent] = session.info.setdefault(_EVENTS_KEY, [])
    events.append(event)
    return event


def record(
    session: Session,
    *,
    at: datetime,
    actor: str,
    event_type: EventType,
    subject: str,
    payload: Mapping[str, Any],
) -> QueuedEvent:
    """The usual pair: one audit entry and one outbox event for one change."""
    event = emit_event(session, at=at, event_type=event_type, subject=subject, payload=payload)
    append_audit(
        session,
        at=at,
        actor=actor,
        action=event_type.value,
        subject=subject,
        details={**payload, "event_id": event.event_id},
    )
    return event

"""Writes the audit entry and the outbox event of a change, inside the change's transaction.

Never commits by itself: the caller's transaction makes the change, its audit entry and its
event durable together. Audit entries are queued in the session and chained at commit
(`seal_pending_audit`, hooked to `before_commit` by `Database`), under a lock on the single
audit head row (SELECT ... FOR UPDATE on PostgreSQL; SQLite transactions are already
serialised by BEGIN IMMEDIATE), so concurrent writers can never fork the hash chain.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from devicetrust.domain.audit import GENESIS_HASH, entry_hash
from devicetrust.domain.events import EventType
from devicetrust.store.models import AuditEntryRow, AuditHeadRow, OutboxRow

_HEAD_ID = 1
_PENDING_KEY = "devicetrust.audit_pending"


@dataclass(frozen=True, slots=True)
class _Pending:
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]


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


def pending_audit_mark(session: Session) -> int:
    """How many audit entries the transaction has queued so far (see `rewind_pending_audit`)."""
    return len(session.info.get(_PENDING_KEY, ()))


def rewind_pending_audit(session: Session, mark: int) -> None:
    """Forget the entries queued after `mark`: their savepoint was rolled back."""
    pending: list[_Pending] | None = session.info.get(_PENDING_KEY)
    if pending is not None:
        del pending[mark:]


def seal_pending_audit(session: Session) -> None:
    """Chain the transaction's queued audit entries onto the log (`before_commit` hook).

    The head row is locked here, at the very end of the transaction, so concurrent writers
    wait for each other only for these few inserts and the commit, never for the work
    (signing, checks) done before them. Entries keep the order they were queued in.
    """
    if session.in_nested_transaction():
        return  # a savepoint is released: the entries wait for the real commit
    pending: list[_Pending] | None = session.info.pop(_PENDING_KEY, None)
    if not pending:
        return
    head = session.execute(
        select(AuditHeadRow).where(AuditHeadRow.id == _HEAD_ID).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = AuditHeadRow(id=_HEAD_ID, seq=0, hash=GENESIS_HASH)
        session.add(head)
    for entry in pending:
        seq = head.seq + 1
        digest = entry_hash(
            head.hash, seq, entry.at, entry.actor, entry.action, entry.subject, entry.details
        )
        session.add(
            AuditEntryRow(
                seq=seq,
                occurred_at=entry.at,
                actor=entry.actor,
                action=entry.action,
                subject=entry.subject,
                details=entry.details,
                prev_hash=head.hash,
                hash=digest,
            )
        )
        head.seq = seq
        head.hash = digest


def emit_event(
    session: Session,
    *,
    at: datetime,
    event_type: EventType,
    subject: str,
    payload: Mapping[str, Any],
) -> OutboxRow:
    row = OutboxRow(
        event_id=str(uuid.uuid4()),
        type=event_type.value,
        occurred_at=at,
        subject=subject,
        payload=dict(payload),
        fanned_out=False,
    )
    session.add(row)
    return row


def record(
    session: Session,
    *,
    at: datetime,
    actor: str,
    event_type: EventType,
    subject: str,
    payload: Mapping[str, Any],
) -> OutboxRow:
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

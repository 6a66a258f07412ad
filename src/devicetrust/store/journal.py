"""Writes the audit entry and the outbox event of a change, inside the change's transaction.

Never commits by itself: the caller's transaction makes the change, its audit entry and its
event durable together. Appending locks the single audit head row (SELECT ... FOR UPDATE on
PostgreSQL; SQLite transactions are already serialised by BEGIN IMMEDIATE), so concurrent
writers can never fork the hash chain.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from devicetrust.domain.audit import GENESIS_HASH, entry_hash
from devicetrust.domain.events import EventType
from devicetrust.store.models import AuditEntryRow, AuditHeadRow, OutboxRow

_HEAD_ID = 1
_HEAD_KEY = "devicetrust.audit_head"


def append_audit(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, Any],
) -> AuditEntryRow:
    head = _locked_head(session)
    seq = head.seq + 1
    clean = dict(details)
    digest = entry_hash(head.hash, seq, at, actor, action, subject, clean)
    row = AuditEntryRow(
        seq=seq,
        occurred_at=at,
        actor=actor,
        action=action,
        subject=subject,
        details=clean,
        prev_hash=head.hash,
        hash=digest,
    )
    session.add(row)
    head.seq = seq
    head.hash = digest
    return row


def _locked_head(session: Session) -> AuditHeadRow:
    """The audit head, locked once per transaction and then kept in the session, so a
    batch of changes appends its entries without another round trip each."""
    cached = session.info.get(_HEAD_KEY)
    if isinstance(cached, AuditHeadRow):
        return cached
    head = session.execute(
        select(AuditHeadRow).where(AuditHeadRow.id == _HEAD_ID).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = AuditHeadRow(id=_HEAD_ID, seq=0, hash=GENESIS_HASH)
        session.add(head)
    session.info[_HEAD_KEY] = head
    return head


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

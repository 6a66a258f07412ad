"""`FeedbackQueue`: messages from the backend to a device, addressed to its logical identity.

A feedback message is queued for a logical identity and routed, when it is published, to the
unit that holds the identity then (so feedback sent before a replacement reaches the new
unit). It waits while nobody holds the identity, until its time to live runs out; at most
`max_pending` wait per identity (a full queue refuses with `ingest.feedback_queue_full`).
The transport publishes what `due()` returns and reports each broker acknowledgment with
`mark_published` -- a status written only after the broker took the message (QoS 1). A
transport that sees the device's own acknowledgment (the embedded gateway) reports it with
`mark_delivered` (recording `delivered_at`): pending -> published -> delivered, or
pending -> expired.

Every `send` is audited (`feedback.sent`) in its transaction: who sent it, to which identity
and the unit holding it then, and what kind of message -- its top-level keys and size, never
the values (a payload may carry set-points or secrets an auditor must not read).
Never routes feedback to a unit that does not hold the identity at publish time.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, literal, select, update

from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import Conflict, InvalidInput, NotFound
from devicetrust.domain.ids import LogicalName, PhysicalId
from devicetrust.ingest.lookup import current_name, holder_of, logical_id_of
from devicetrust.ingest.records import Feedback, FeedbackStatus
from devicetrust.store.database import Database
from devicetrust.store.journal import append_audit
from devicetrust.store.models import BindingRow
from devicetrust.store.models_data_plane import FeedbackRow

MAX_FEEDBACK_BYTES = 16 * 1024
MAX_TTL = timedelta(days=30)
SENT_ACTION = "feedback.sent"
_AUDITED_KEYS = 32  # top-level keys named in the audit entry at most (each cut to 64 chars)


# Does any pending feedback (expired or not) wait for an identity these units hold? An index
# probe per unit (its open binding, then the identity's feedback), read without a write lock.
_PENDING_FOR_UNITS = (
    select(literal(1))
    .select_from(BindingRow)
    .join(
        FeedbackRow,
        and_(
            FeedbackRow.logical_id == BindingRow.logical_id,
            FeedbackRow.status == FeedbackStatus.PENDING.value,
        ),
    )
    .where(
        BindingRow.physical_id.in_(bindparam("units", expanding=True)),
        BindingRow.ended_at.is_(None),
    )
    .limit(1)
)


def wire_payload(payload: Mapping[str, Any]) -> bytes:
    """The MQTT payload of a feedback message: compact UTF-8 JSON."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Routed:
    """A pending feedback message and the unit it goes to now."""

    feedback: Feedback
    physical_id: PhysicalId


class FeedbackQueue:
    def __init__(self, db: Database, clock: Clock, *, max_pending: int = 100) -> None:
        self._db = db
        self._clock = clock
        self._max_pending = max_pending

    def send(
        self,
        logical_name: str,
        payload: Mapping[str, Any],
        *,
        actor: str,
        ttl: timedelta = timedelta(hours=1),
    ) -> Feedback:
        """Queue `payload` (a JSON object) for whoever holds `logical_name`."""
        if not timedelta(0) < ttl <= MAX_TTL:
            raise InvalidInput("ingest.bad_ttl", f"ttl is between 0 and {MAX_TTL.days} days")
        body = dict(payload)
        try:
            size = len(json.dumps(body, allow_nan=False).encode("utf-8"))
        except (TypeError, ValueError, RecursionError) as exc:  # NaN, Infinity, non-JSON
            raise InvalidInput(
                "ingest.feedback_not_json", "feedback is a JSON object (no NaN or Infinity)"
            ) from exc
        if size > MAX_FEEDBACK_BYTES:
            raise InvalidInput(
                "ingest.feedback_too_large", f"feedback is at most {MAX_FEEDBACK_BYTES} bytes"
            )
        now = self._clock.now()
        with self._db.transaction() as session:
            logical_id = logical_id_of(session, logical_name, now)
            waiting = session.execute(
                select(func.count())
                .select_from(FeedbackRow)
                .where(
                    FeedbackRow.logical_id == logical_id,
                    FeedbackRow.status == FeedbackStatus.PENDING.value,
                )
            ).scalar_one()
            if waiting >= self._max_pending:
                raise Conflict(
                    "ingest.feedback_queue_full",
                    f"{waiting} feedback messages already wait for {logical_name}",
                )
            row = FeedbackRow(
                id=str(uuid.uuid4()),
                logical_id=logical_id,
                logical_name=current_name(session, logical_id),
                physical_id=None,
                payload=body,
                status=FeedbackStatus.PENDING.value,
                created_at=now,
                created_by=actor,
                expires_at=now + ttl,
                published_at=None,
                delivered_at=None,
                attempts=0,
            )
            session.add(row)
            append_audit(
                session,
                at=now,
                actor=actor,
                action=SENT_ACTION,
                subject=row.logical_name,
                details={
                    "feedback_id": row.id,
                    "unit": holder_of(session, logical_id),  # None: nobody holds it now
                    "keys": sorted(k[:64] for k in body)[:_AUDITED_KEYS],
                    "bytes": size,
                    "ttl_seconds": int(ttl.total_seconds()),
                },
            )
            return _to_feedback(row)

    def due(self, *, limit: int = 100, units: Collection[str] | None = None) -> list[Routed]:
        """Pending feedback whose identity has a holder now, oldest first; expires what
        outlived its time to live. With `units`, only feedback for the identities those
        units hold (a transport asks for its connected devices: offline holders then never
        crowd them out of the `limit`); when none waits for them (the usual answer for a
        unit that just connected), one read says so and nothing is written."""
        if units is not None and not self._any_pending(units):
            return []
        now = self._clock.now()
        with self._db.transaction() as session:
            session.execute(
                update(FeedbackRow)
                .where(
                    FeedbackRow.status == FeedbackStatus.PENDING.value,
                    FeedbackRow.expires_at <= now,
                )
                .values(status=FeedbackStatus.EXPIRED.value)
            )
            query = select(FeedbackRow).where(FeedbackRow.status == FeedbackStatus.PENDING.value)
            if units is not None:
                query = query.where(
                    FeedbackRow.logical_id.in_(
                        select(BindingRow.logical_id).where(
                            BindingRow.physical_id.in_(sorted(units)),
                            BindingRow.ended_at.is_(None),
                        )
                    )
                )
            rows = session.execute(
                query.order_by(FeedbackRow.created_at, FeedbackRow.id).limit(limit)
            ).scalars()
            routed: list[Routed] = []
            for row in rows:
                holder = holder_of(session, row.logical_id)
                if holder is not None:
                    row.attempts += 1
                    routed.append(Routed(_to_feedback(row), PhysicalId(holder)))
            return routed

    def _any_pending(self, units: Collection[str]) -> bool:
        if not units:
            return False
        with self._db.read() as session:
            found = session.connection().execute(_PENDING_FOR_UNITS, {"units": list(units)})
            return found.first() is not None

    def mark_published(self, feedback_id: str, physical_id: str) -> None:
        """The broker acknowledged the feedback on `physical_id`'s topic."""
        now = self._clock.now()
        with self._db.transaction() as session:
            session.execute(
                update(FeedbackRow)
                .where(
                    FeedbackRow.id == feedback_id,
                    FeedbackRow.status == FeedbackStatus.PENDING.value,
                )
                .values(
                    status=FeedbackStatus.PUBLISHED.value,
                    physical_id=physical_id,
                    published_at=now,
                )
            )

    def mark_delivered(self, feedback_id: str, physical_id: str) -> bool:
        """The unit it was published to acknowledged it (MQTT PUBACK). False when it is not
        a published feedback of that unit (another unit's, unknown, already delivered)."""
        now = self._clock.now()
        with self._db.transaction() as session:
            done: int = session.execute(
                update(FeedbackRow)
                .where(
                    FeedbackRow.id == feedback_id,
                    FeedbackRow.status == FeedbackStatus.PUBLISHED.value,
                    FeedbackRow.physical_id == physical_id,
                )
                .values(status=FeedbackStatus.DELIVERED.value, delivered_at=now)
            ).rowcount  # type: ignore[attr-defined]
            return done == 1

    def unacknowledged(self, physical_id: str) -> list[Feedback]:
        """Feedback published to `physical_id` and not acknowledged yet, still within its
        time to live, oldest first (what a persistent session held when the gateway
        stopped)."""
        now = self._clock.now()
        with self._db.read() as session:
            rows = session.execute(
                select(FeedbackRow)
                .where(
                    FeedbackRow.physical_id == physical_id,
                    FeedbackRow.status == FeedbackStatus.PUBLISHED.value,
                    FeedbackRow.expires_at > now,
                )
                .order_by(FeedbackRow.published_at, FeedbackRow.id)
            ).scalars()
            return [_to_feedback(row) for row in rows]

    def get(self, feedback_id: str) -> Feedback:
        with self._db.read() as session:
            row = session.get(FeedbackRow, feedback_id)
            if row is None:
                raise NotFound("ingest.feedback_not_found", f"no feedback {feedback_id}")
            return _to_feedback(row)

    def list_for(self, logical_name: str, *, limit: int = 100) -> list[Feedback]:
        """Feedback addressed to an identity, newest first."""
        with self._db.read() as session:
            logical_id = logical_id_of(session, logical_name, self._clock.now())
            rows = session.execute(
                select(FeedbackRow)
                .where(FeedbackRow.logical_id == logical_id)
                .order_by(FeedbackRow.created_at.desc(), FeedbackRow.id.desc())
                .limit(limit)
            ).scalars()
            return [_to_feedback(row) for row in rows]


def _to_feedback(row: FeedbackRow) -> Feedback:
    return Feedback(
        feedback_id=row.id,
        logical_name=LogicalName(row.logical_name),
        payload=row.payload,
        status=FeedbackStatus(row.status),
        created_at=row.created_at,
        expires_at=row.expires_at,
        physical_id=PhysicalId(row.physical_id) if row.physical_id else None,
        published_at=row.published_at,
        delivered_at=row.delivered_at,
    )

"""An outbox consumer's position: which events of some types it still has to handle.

    cursor = OutboxCursor(db, clock, "pki.auto_revoker", types, settle=timedelta(minutes=10))
    cursor.ensure()
    for event_id in cursor.pending_ids(): ...      # handled events are marked consumed:
        cursor.mark(session, event_id)             #   in the handling transaction, or
    cursor.consume(ids)                            #   afterwards, in bulk
    cursor.advance()

Delivery is at-least-once. The cursor keeps a low-water mark (`event_cursors`) and the ids
handled above it (`consumed_events`). Outbox ids can commit out of order (an id taken by a
transaction that commits later would be skipped by a plain "last id seen"), so the mark only
passes events older than `settle`, and never an unhandled event of the consumer's types;
the consumed ids below the mark are then dropped.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta

from sqlalchemy import Exists, delete, exists, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from devicetrust.domain.clock import Clock
from devicetrust.store.database import Database
from devicetrust.store.models import ConsumedEventRow, EventCursorRow, OutboxRow


class OutboxCursor:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        consumer: str,
        types: Collection[str],
        *,
        settle: timedelta = timedelta(minutes=10),
        batch: int = 500,
    ) -> None:
        if batch < 1 or settle < timedelta(0):
            raise ValueError("batch is positive and settle is not negative")
        self._db = db
        self._clock = clock
        self.consumer = consumer
        self._types = sorted(types)
        self._settle = settle
        self._batch = batch

    def ensure(self) -> None:
        """Create the cursor row at 0 if it does not exist yet (idempotent, race-free)."""
        insert = pg_insert if self._db.is_postgres else sqlite_insert
        with self._db.transaction() as session:
            session.execute(
                insert(EventCursorRow)
                .values(consumer=self.consumer, outbox_id=0, updated_at=self._clock.now())
                .on_conflict_do_nothing(index_elements=["consumer"])
            )

    def pending(self) -> list[OutboxRow]:
        """Up to `batch` unhandled events of the consumer's types, oldest first."""
        with self._db.read() as session:
            low = self.row(session).outbox_id
            return list(
                session.execute(
                    select(OutboxRow)
                    .where(OutboxRow.id > low, OutboxRow.type.in_(self._types), ~self._consumed())
                    .order_by(OutboxRow.id)
                    .limit(self._batch)
                ).scalars()
            )

    def pending_ids(self) -> list[int]:
        return [event.id for event in self.pending()]

    def row(self, session: Session, *, lock: bool = False) -> EventCursorRow:
        """The cursor row; locked, it serialises the consumer's instances."""
        stmt = select(EventCursorRow).where(EventCursorRow.consumer == self.consumer)
        return session.execute(stmt.with_for_update() if lock else stmt).scalar_one()

    def is_consumed(self, session: Session, event_id: int) -> bool:
        return session.get(ConsumedEventRow, (self.consumer, event_id)) is not None

    def mark(self, session: Session, event_id: int) -> None:
        """Mark one event handled, in the caller's (handling) transaction."""
        session.add(
            ConsumedEventRow(
                consumer=self.consumer, outbox_id=event_id, consumed_at=self._clock.now()
            )
        )

    def consume(self, ids: Sequence[int]) -> None:
        """Mark events handled after the fact, in bulk (a second time does no harm)."""
        if not ids:
            return
        now = self._clock.now()
        insert = pg_insert if self._db.is_postgres else sqlite_insert
        with self._db.transaction() as session:
            session.execute(
                insert(ConsumedEventRow)
                .values(
                    [{"consumer": self.consumer, "outbox_id": i, "consumed_at": now} for i in ids]
                )
                .on_conflict_do_nothing(index_elements=["consumer", "outbox_id"])
            )

    def advance(self) -> None:
        """Move the low-water mark past settled events that need nothing more."""
        now = self._clock.now()
        with self._db.transaction() as session:
            cursor = self.row(session, lock=True)
            first_pending = session.execute(
                select(func.min(OutboxRow.id)).where(
                    OutboxRow.id > cursor.outbox_id,
                    OutboxRow.type.in_(self._types),
                    ~self._consumed(),
                )
            ).scalar()
            stmt = select(func.max(OutboxRow.id)).where(
                OutboxRow.id > cursor.outbox_id, OutboxRow.occurred_at <= now - self._settle
            )
            if first_pending is not None:
                stmt = stmt.where(OutboxRow.id < first_pending)
            new_low = session.execute(stmt).scalar()
            if new_low is None:
                return
            cursor.outbox_id = new_low
            cursor.updated_at = now
            session.execute(
                delete(ConsumedEventRow).where(
                    ConsumedEventRow.consumer == self.consumer,
                    ConsumedEventRow.outbox_id <= new_low,
                )
            )

    def _consumed(self) -> Exists:
        return exists().where(
            ConsumedEventRow.consumer == self.consumer, ConsumedEventRow.outbox_id == OutboxRow.id
        )

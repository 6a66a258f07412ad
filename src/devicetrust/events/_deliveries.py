"""Operator-facing reads and actions on webhook deliveries: list, get, redeliver.

Mixed into `Dispatcher`. Redelivery is audited in the same transaction as the change; nothing
here sends a request.
"""

from __future__ import annotations

from sqlalchemy import select

from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import Conflict, InvalidInput, NotFound
from devicetrust.events._delivery import Delivery, DeliveryStatus
from devicetrust.store.database import Database
from devicetrust.store.journal import append_audit
from devicetrust.store.models import DeliveryRow, OutboxRow

MAX_LIMIT = 1000


class DeliveryQueries:
    _db: Database
    _clock: Clock

    def redeliver(self, delivery_id: int, *, actor: str) -> Delivery:
        """Give a dead delivery a fresh set of attempts, starting now (audited)."""
        now = self._clock.now()
        with self._db.transaction() as session:
            row = session.get(DeliveryRow, delivery_id, with_for_update=True)
            if row is None:
                raise NotFound(
                    "webhook.delivery_not_found", f"no delivery {delivery_id}", id=delivery_id
                )
            if row.status != DeliveryStatus.DEAD.value:
                raise Conflict(
                    "webhook.delivery_not_dead",
                    f"delivery {delivery_id} is {row.status}; only dead deliveries are redelivered",
                )
            event = session.get_one(OutboxRow, row.outbox_id)
            row.status = DeliveryStatus.PENDING.value
            row.attempts = 0
            row.next_attempt_at = now
            append_audit(
                session,
                at=now,
                actor=actor,
                action="webhook.redelivered",
                subject=row.webhook_id,
                details={"delivery_id": row.id, "event_id": event.event_id},
            )
            return _to_delivery(row, event)

    def get_delivery(self, delivery_id: int) -> Delivery:
        with self._db.read() as session:
            row = session.get(DeliveryRow, delivery_id)
            if row is None:
                raise NotFound(
                    "webhook.delivery_not_found", f"no delivery {delivery_id}", id=delivery_id
                )
            return _to_delivery(row, session.get_one(OutboxRow, row.outbox_id))

    def list_deliveries(
        self,
        status: DeliveryStatus | None = None,
        limit: int = 100,
        *,
        webhook_id: str | None = None,
        before_id: int | None = None,
    ) -> list[Delivery]:
        """Newest first; page with `before_id` (the last id of the previous page)."""
        check_limit(limit)
        stmt = (
            select(DeliveryRow, OutboxRow)
            .join(OutboxRow, DeliveryRow.outbox_id == OutboxRow.id)
            .order_by(DeliveryRow.id.desc())
            .limit(limit)
        )
        if status is not None:
            stmt = stmt.where(DeliveryRow.status == DeliveryStatus(status).value)
        if webhook_id is not None:
            stmt = stmt.where(DeliveryRow.webhook_id == webhook_id)
        if before_id is not None:
            stmt = stmt.where(DeliveryRow.id < before_id)
        with self._db.read() as session:
            return [_to_delivery(d, e) for d, e in session.execute(stmt)]


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("request.invalid_page", f"limit is 1-{MAX_LIMIT}")


def _to_delivery(row: DeliveryRow, event: OutboxRow) -> Delivery:
    return Delivery(
        delivery_id=row.id,
        webhook_id=row.webhook_id,
        event_id=event.event_id,
        event_type=event.type,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
    )

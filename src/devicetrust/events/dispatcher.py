"""The webhook dispatcher: turns outbox events into signed HTTP deliveries, with retries.

Two steps, each safe to repeat and to run in several processes at once:

1. `fan_out`: in one transaction, for each outbox event not yet fanned out (oldest first), a
   `pending` delivery per enabled webhook whose filters match, then the event is marked
   fanned out. The unique constraint `uq_delivery_once` makes a repeat a no-op.
2. `deliver_due`: claims due deliveries in a short transaction (pushing their next attempt a
   lease ahead, so another worker does not take them), then POSTs each one with no
   transaction open, then records the outcome in a new transaction guarded by the attempt
   count it claimed (a late, duplicate worker changes nothing).

Delivery is at-least-once and unordered: receivers dedupe on `DeviceTrust-Event-Id`. Never
holds a database transaction across an HTTP call, never follows redirects, never reads a
response body, and never writes a secret or a response into `last_error`. All times come from
the `Clock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType

import httpx
from sqlalchemy import false, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError

from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import ConfigurationError, Conflict
from devicetrust.events._deliveries import DeliveryQueries, check_limit
from devicetrust.events._delivery import (
    DeliveryReport,
    DeliveryStatus,
    RetryPolicy,
    envelope_body,
    short_error,
)
from devicetrust.events._filters import matches
from devicetrust.events.signing import SIGNATURE_HEADER, sign
from devicetrust.events.webhooks import redacted_url, secret_aad
from devicetrust.store.database import Database
from devicetrust.store.models import DeliveryRow, OutboxRow, WebhookRow
from devicetrust.vault import Sealer

_log = logging.getLogger(__name__)

USER_AGENT = "devicetrust-webhooks/1"
_PENDING = DeliveryStatus.PENDING.value
_LEASE_MARGIN = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class _Job:
    """Everything one HTTP attempt needs, read in the claim transaction."""

    delivery_id: int
    claimed_attempts: int
    webhook_id: str
    url: str
    secret_sealed: bytes
    event_id: str
    event_type: str
    body: bytes


class Dispatcher(DeliveryQueries):
    def __init__(
        self,
        db: Database,
        clock: Clock,
        vault: Sealer,
        *,
        transport: httpx.BaseTransport | None = None,
        max_attempts: int = 8,
        base_backoff: timedelta = timedelta(seconds=2),
        max_backoff: timedelta = timedelta(hours=1),
        timeout: timedelta = timedelta(seconds=10),
        concurrency: int = 4,
        fan_out_batch: int = 200,
    ) -> None:
        if concurrency < 1 or fan_out_batch < 1 or timeout <= timedelta(0):
            raise ValueError("concurrency, fan_out_batch and timeout are positive")
        self._db = db
        self._clock = clock
        self._vault = vault
        self._policy = RetryPolicy(max_attempts, base_backoff, max_backoff)
        self._timeout = timeout
        self._concurrency = concurrency
        self._fan_out_batch = fan_out_batch
        self._rng = secrets.SystemRandom()
        self._client = httpx.Client(
            transport=transport,
            timeout=timeout.total_seconds(),
            follow_redirects=False,  # a redirect could point a signed event anywhere
            headers={"User-Agent": USER_AGENT},
        )

    # ---- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- passes --------------------------------------------------------------------------

    def run_once(self, limit: int = 100) -> DeliveryReport:
        """Fan out new events, then deliver what is due."""
        created = self.fan_out()
        return DeliveryReport(fanned_out=created) + self.deliver_due(limit)

    def fan_out(self) -> int:
        """Create the deliveries of every event not yet fanned out; returns how many."""
        created = 0
        while True:
            with self._db.transaction() as session:
                stmt = (
                    select(OutboxRow.id, OutboxRow.type)
                    .where(OutboxRow.fanned_out == false())
                    .order_by(OutboxRow.id)
                    .limit(self._fan_out_batch)
                )
                if self._db.is_postgres:
                    stmt = stmt.with_for_update(skip_locked=True)
                events = session.execute(stmt).all()
                if not events:
                    return created
                hooks = session.execute(
                    select(WebhookRow.id, WebhookRow.event_types).where(
                        WebhookRow.enabled.is_(True)
                    )
                ).all()
                now = self._clock.now()
                values = [
                    {
                        "webhook_id": hook_id,
                        "outbox_id": event_id,
                        "status": _PENDING,
                        "attempts": 0,
                        "next_attempt_at": now,
                    }
                    for event_id, event_type in events
                    for hook_id, filters in hooks
                    if matches(filters, event_type)
                ]
                if values:
                    insert = pg_insert if self._db.is_postgres else sqlite_insert
                    inserted = session.execute(
                        insert(DeliveryRow)
                        .values(values)
                        .on_conflict_do_nothing(index_elements=["webhook_id", "outbox_id"])
                        .returning(DeliveryRow.id)
                    )
                    # Rows that already existed (a replayed batch) are not returned.
                    created += len(inserted.all())
                session.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id.in_([event_id for event_id, _ in events]))
                    .values(fanned_out=True)
                )
            if len(events) < self._fan_out_batch:
                return created

    def deliver_due(self, limit: int = 100) -> DeliveryReport:
        """Attempt up to `limit` deliveries whose next attempt is due."""
        check_limit(limit)
        jobs = self._claim(limit)
        if not jobs:
            return DeliveryReport()
        with ThreadPoolExecutor(
            max_workers=min(self._concurrency, len(jobs)), thread_name_prefix="webhook"
        ) as pool:
            outcomes = list(pool.map(self._attempt, jobs))
        return DeliveryReport(
            attempted=len(jobs),
            delivered=outcomes.count(DeliveryStatus.DELIVERED),
            retrying=outcomes.count(DeliveryStatus.PENDING),
            dead=outcomes.count(DeliveryStatus.DEAD),
        )

    def _claim(self, limit: int) -> list[_Job]:
        now = self._clock.now()
        # Long enough to cover every request of the batch at its worst (each one timing out).
        lease = self._timeout * (math.ceil(limit / self._concurrency) + 1) + _LEASE_MARGIN
        stmt = (
            select(DeliveryRow, OutboxRow, WebhookRow)
            .join(OutboxRow, DeliveryRow.outbox_id == OutboxRow.id)
            .join(WebhookRow, DeliveryRow.webhook_id == WebhookRow.id)
            .where(
                DeliveryRow.status == _PENDING,
                DeliveryRow.next_attempt_at <= now,
                WebhookRow.enabled.is_(True),
            )
            .order_by(DeliveryRow.next_attempt_at, DeliveryRow.id)
            .limit(limit)
        )
        if self._db.is_postgres:
            stmt = stmt.with_for_update(of=DeliveryRow, skip_locked=True)
        jobs: list[_Job] = []
        with self._db.transaction() as session:
            for delivery, event, hook in session.execute(stmt):
                delivery.next_attempt_at = now + lease
                body = envelope_body(
                    event_id=event.event_id,
                    event_type=event.type,
                    occurred_at=event.occurred_at,
                    subject=event.subject,
                    payload=event.payload,
                )
                jobs.append(
                    _Job(
                        delivery_id=delivery.id,
                        claimed_attempts=delivery.attempts,
                        webhook_id=hook.id,
                        url=hook.url,
                        secret_sealed=hook.secret_sealed,
                        event_id=event.event_id,
                        event_type=event.type,
                        body=body,
                    )
                )
        return jobs

    def _attempt(self, job: _Job) -> DeliveryStatus | None:
        try:
            secret = self._vault.open(job.secret_sealed, aad=secret_aad(job.webhook_id))
        except ConfigurationError as exc:
            if exc.code != "vault.unseal_failed":
                raise
            # Counted as a failed attempt, so one damaged row cannot stall the others, and
            # the operator sees why in the delivery list.
            error: str | None = f"{exc.code}: the signing secret cannot be opened"
        else:
            try:
                header = sign(secret, job.body, self._clock.now())
            finally:
                secret[:] = bytes(len(secret))
            error = self._post(job, header)
        return self._record(job, error)

    def _post(self, job: _Job, signature: str) -> str | None:
        """One HTTP attempt; `None` on a 2xx answer, else a short reason."""
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature,
            "DeviceTrust-Event-Id": job.event_id,
            "DeviceTrust-Event-Type": job.event_type,
        }
        try:
            # Streamed and closed unread: a receiver cannot make us buffer a large answer.
            with self._client.stream("POST", job.url, content=job.body, headers=headers) as resp:
                status = resp.status_code
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            text = f"{type(exc).__name__}: {exc}".replace(job.url, redacted_url(job.url))
            return short_error(text)
        if 200 <= status < 300:
            return None
        return f"HTTP {status}"

    def _record(self, job: _Job, error: str | None) -> DeliveryStatus | None:
        now = self._clock.now()
        with self._db.transaction() as session:
            row = session.execute(
                select(DeliveryRow)
                .where(
                    DeliveryRow.id == job.delivery_id,
                    DeliveryRow.status == _PENDING,
                    DeliveryRow.attempts == job.claimed_attempts,
                )
                .with_for_update()
            ).scalar_one_or_none()
            if row is None:
                return None  # deleted, redelivered or finished by another worker meanwhile
            row.attempts += 1
            if error is None:
                row.status = DeliveryStatus.DELIVERED.value
                row.delivered_at = now
                return DeliveryStatus.DELIVERED
            row.last_error = error
            if self._policy.is_last(row.attempts):
                row.status = DeliveryStatus.DEAD.value
                row.next_attempt_at = now
                _log.warning(
                    "webhook delivery %s (webhook %s, event %s) is dead after %d attempts: %s",
                    row.id,
                    job.webhook_id,
                    job.event_id,
                    row.attempts,
                    error,
                )
                return DeliveryStatus.DEAD
            row.next_attempt_at = now + self._policy.next_delay(row.attempts, self._rng)
            return DeliveryStatus.PENDING

    # ---- long-running loops ---------------------------------------------------------------

    async def run_forever(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Run passes until `stop` is set; the blocking work runs in a worker thread."""
        while not stop.is_set():
            busy = await asyncio.to_thread(self._guarded_pass)
            if busy:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    def run_blocking(self, stop: threading.Event, interval: float = 1.0) -> None:
        """The same loop for a plain thread."""
        while not stop.is_set():
            if not self._guarded_pass():
                stop.wait(interval)

    def _guarded_pass(self, limit: int = 100) -> bool:
        """One pass; True if there may be more due right away. A database that is briefly
        unreachable or a lost race is logged and retried on the next pass; anything else
        (a bug, a closed vault) stops the loop loudly."""
        try:
            report = self.run_once(limit)
        except (OperationalError, Conflict) as exc:
            _log.warning("webhook dispatcher pass failed, will retry: %s", type(exc).__name__)
            return False
        return report.attempted >= limit

"""Webhook delivery end to end against a real HTTP receiver on a loopback port.

Every request the receiver gets is checked with `events.signing.verify` (a receiver's view);
outcomes are read back from the delivery rows.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url

from devicetrust.domain.clock import FixedClock
from devicetrust.domain.errors import Conflict, NotFound
from devicetrust.events import AuditLog, DeliveryStatus, Dispatcher, WebhookService
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow, DeliveryRow, OutboxRow, WebhookRow
from devicetrust.vault import Vault
from tests.events.conftest import Receiver

BASE = timedelta(seconds=2)


@pytest.fixture
def dispatcher(db: Database, clock: FixedClock, vault: Vault) -> Iterator[Dispatcher]:
    with Dispatcher(
        db,
        clock,
        vault,
        max_attempts=3,
        base_backoff=BASE,
        max_backoff=timedelta(seconds=5),
        timeout=timedelta(seconds=2),
    ) as built:
        yield built


@pytest.fixture
def hooks(db: Database, clock: FixedClock, vault: Vault) -> WebhookService:
    return WebhookService(db, clock, vault)


def _subscribe(hooks: WebhookService, receiver: Receiver, types: list[str] | None = None) -> str:
    hook, secret = hooks.add(receiver.url, types or ["identity.*"], actor="op")
    receiver.secret = secret
    return hook.webhook_id


def _register_unit(db: Database, clock: FixedClock) -> str:
    unit = IdentityService(db, clock).register(UnitSpec("kuka-kr-16", {"ctl": "C-1"}), actor="f")
    return unit.physical_id


def _deliveries(db: Database) -> list[DeliveryRow]:
    with db.transaction() as session:
        return list(session.execute(select(DeliveryRow).order_by(DeliveryRow.id)).scalars())


def test_event_is_delivered_signed_with_the_envelope(
    db: Database,
    clock: FixedClock,
    hooks: WebhookService,
    dispatcher: Dispatcher,
    receiver: Receiver,
) -> None:
    _subscribe(hooks, receiver)
    physical_id = _register_unit(db, clock)

    report = dispatcher.run_once()

    assert (report.fanned_out, report.attempted, report.delivered) == (1, 1, 1)
    [got] = receiver.received
    assert got.verdict == "valid"
    assert got.path == "/hooks/devicetrust"
    envelope = json.loads(got.body)
    assert envelope["type"] == "identity.created"
    assert envelope["subject"] == physical_id
    assert envelope["data"]["physical_id"] == physical_id
    assert envelope["occurred_at"] == clock.now().isoformat()
    assert got.headers["DeviceTrust-Event-Id"] == envelope["id"]
    assert got.headers["DeviceTrust-Event-Type"] == "identity.created"
    assert got.headers["Content-Type"] == "application/json"
    [row] = _deliveries(db)
    assert row.status == "delivered" and row.delivered_at == clock.now() and row.attempts == 1
    with db.transaction() as session:
        event = session.execute(select(OutboxRow).where(OutboxRow.id == row.outbox_id)).scalar_one()
        assert event.event_id == envelope["id"] and event.fanned_out
    assert dispatcher.run_once().attempted == 0  # nothing is sent twice


def test_only_enabled_webhooks_with_matching_filters_get_the_event(
    db: Database,
    clock: FixedClock,
    hooks: WebhookService,
    dispatcher: Dispatcher,
    receiver: Receiver,
) -> None:
    wanted = _subscribe(hooks, receiver, ["identity.created"])
    hooks.add(receiver.url, ["device.*"], actor="op")
    disabled, _ = hooks.add(receiver.url, ["*"], actor="op")
    with db.transaction() as session:
        session.execute(
            update(WebhookRow).where(WebhookRow.id == disabled.webhook_id).values(enabled=False)
        )
    _register_unit(db, clock)
    dispatcher.run_once()
    assert [(d.webhook_id, d.status) for d in _deliveries(db)] == [(wanted, "delivered")]
    assert len(receiver.received) == 1


def test_failures_back_off_exponentially_then_dead_letter(
    db: Database,
    clock: FixedClock,
    hooks: WebhookService,
    dispatcher: Dispatcher,
    receiver: Receiver,
) -> None:
    _subscribe(hooks, receiver)
    receiver.statuses.extend([500, 500, 500])
    _register_unit(db, clock)

    for attempt, backoff in enumerate([BASE, 2 * BASE], start=1):
        tried_at = clock.now()
        report = dispatcher.run_once()
        assert (report.attempted, report.retrying) == (1, 1)
        [row] = _deliveries(db)
        assert (row.status, row.attempts, row.last_error) == ("pending", attempt, "HTTP 500")
        wait = row.next_attempt_at - tried_at
        assert backoff <= wait <= backoff * 1.2  # plus at most 20% jitter
        # Not due a moment before its time, due at it.
        clock.advance(wait - timedelta(milliseconds=1))
        assert dispatcher.deliver_due().attempted == 0
        clock.advance(timedelta(milliseconds=1))

    report = dispatcher.deliver_due()
    assert (report.attempted, report.dead) == (1, 1)
    [row] = _deliveries(db)
    assert (row.status, row.attempts, row.delivered_at) == ("dead", 3, None)
    clock.advance(timedelta(hours=2))
    assert dispatcher.run_once().attempted == 0
    assert [r.verdict for r in receiver.received] == ["valid"] * 3
    assert dispatcher.list_deliveries(DeliveryStatus.DEAD)[0].delivery_id == row.id


def test_redeliver_gives_a_dead_delivery_new_attempts_and_is_audited(
    db: Database,
    clock: FixedClock,
    hooks: WebhookService,
    dispatcher: Dispatcher,
    receiver: Receiver,
) -> None:
    _subscribe(hooks, receiver)
    receiver.statuses.extend([503, 503, 503])
    _register_unit(db, clock)
    for _ in range(3):
        dispatcher.run_once()
        clock.advance(timedelta(seconds=10))
    [dead] = dispatcher.list_deliveries(DeliveryStatus.DEAD)

    again = dispatcher.redeliver(dead.delivery_id, actor="op:carol")

    assert (again.status, again.attempts, again.next_attempt_at) == ("pending", 0, clock.now())
    assert dispatcher.deliver_due().delivered == 1
    assert dispatcher.get_delivery(dead.delivery_id).status is DeliveryStatus.DELIVERED
    with db.transaction() as session:
        entry = session.execute(
            select(AuditEntryRow).where(AuditEntryRow.action == "webhook.redelivered")
        ).scalar_one()
    assert entry.actor == "op:carol" and entry.details["delivery_id"] == dead.delivery_id
    assert AuditLog(db).verify().ok
    with pytest.raises(Conflict) as err:
        dispatcher.redeliver(dead.delivery_id, actor="op")
    assert err.value.code == "webhook.delivery_not_dead"
    with pytest.raises(NotFound):
        dispatcher.redeliver(999_999, actor="op")


def test_fan_out_is_idempotent(
    db: Database,
    clock: FixedClock,
    hooks: WebhookService,
    dispatcher: Dispatcher,
    receiver: Receiver,
) -> None:
    _subscribe(hooks, receiver)
    for _ in range(3):
        _register_unit(db, clock)
    assert dispatcher.fan_out() == 3
    assert dispatcher.fan_out() == 0
    # A crash after inserting deliveries but before marking events would replay them.
    with db.transaction() as session:
        session.execute(update(OutboxRow).values(fanned_out=False))
    assert dispatcher.fan_out() == 0
    assert len(_deliveries(db)) == 3
    assert dispatcher.deliver_due().delivered == 3
    assert len({json.loads(r.body)["id"] for r in receiver.received}) == 3


def _no_transaction_open(db: Database) -> bool:
    if db.is_postgres:
        with db.engine.connect() as conn:
            busy: int = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
                )
            ).scalar_one()
        return busy == 0
    probe = sqlite3.connect(str(make_url(db.url).database), timeout=0.05)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.rollback()
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()


def test_no_transaction_is_open_during_the_http_call_nor_is_the_job_taken_twice(
    db: Database,
    clock: FixedClock,
    vault: Vault,
    hooks: WebhookService,
    dispatcher: Dispatcher,
    receiver: Receiver,
) -> None:
    with db.transaction() as session:  # the probe itself sees an open transaction
        session.execute(text("SELECT 1"))
        assert not _no_transaction_open(db)
    _subscribe(hooks, receiver)
    _register_unit(db, clock)
    seen: list[tuple[bool, int]] = []
    with Dispatcher(db, clock, vault) as second_worker:
        receiver.on_request = lambda: seen.append(
            (_no_transaction_open(db), second_worker.deliver_due().attempted)
        )
        assert dispatcher.run_once().delivered == 1
    assert seen == [(True, 0)]


def test_unreachable_receiver_is_a_short_error_without_secrets(
    db: Database, clock: FixedClock, hooks: WebhookService, dispatcher: Dispatcher
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _, secret = hooks.add(f"http://127.0.0.1:{port}/x?token=abc", ["identity.*"], actor="op")
    _register_unit(db, clock)
    report = dispatcher.run_once()
    assert report.retrying == 1
    [row] = _deliveries(db)
    assert row.last_error is not None and row.last_error.startswith("ConnectError")
    assert len(row.last_error) <= 300 and "token=abc" not in row.last_error
    assert secret not in row.last_error


def test_tampered_sealed_secret_fails_the_delivery_and_sends_nothing(
    db: Database,
    clock: FixedClock,
    hooks: WebhookService,
    dispatcher: Dispatcher,
    receiver: Receiver,
) -> None:
    webhook_id = _subscribe(hooks, receiver)
    with db.transaction() as session:
        sealed = bytearray(session.execute(select(WebhookRow.secret_sealed)).scalar_one())
        sealed[-1] ^= 0x01
        session.execute(
            update(WebhookRow)
            .where(WebhookRow.id == webhook_id)
            .values(secret_sealed=bytes(sealed))
        )
    _register_unit(db, clock)
    assert dispatcher.run_once().retrying == 1
    [row] = _deliveries(db)
    assert row.last_error is not None and row.last_error.startswith("vault.unseal_failed")
    assert receiver.received == []


def test_deleting_a_webhook_drops_its_pending_deliveries(
    db: Database,
    clock: FixedClock,
    hooks: WebhookService,
    dispatcher: Dispatcher,
    receiver: Receiver,
) -> None:
    webhook_id = _subscribe(hooks, receiver)
    _register_unit(db, clock)
    assert dispatcher.fan_out() == 1
    hooks.delete(webhook_id, actor="op")
    assert dispatcher.deliver_due().attempted == 0
    assert _deliveries(db) == []
    assert receiver.received == []


def test_list_deliveries_filters_and_pages(
    db: Database,
    clock: FixedClock,
    hooks: WebhookService,
    dispatcher: Dispatcher,
    receiver: Receiver,
) -> None:
    webhook_id = _subscribe(hooks, receiver)
    receiver.statuses.append(500)
    for _ in range(3):
        _register_unit(db, clock)
    dispatcher.run_once()
    everything = dispatcher.list_deliveries()
    assert [d.delivery_id for d in everything] == sorted(
        (d.delivery_id for d in everything), reverse=True
    )
    assert len(dispatcher.list_deliveries(DeliveryStatus.DELIVERED)) == 2
    assert len(dispatcher.list_deliveries(DeliveryStatus.PENDING, webhook_id=webhook_id)) == 1
    page = dispatcher.list_deliveries(limit=2)
    rest = dispatcher.list_deliveries(limit=2, before_id=page[-1].delivery_id)
    assert [d.delivery_id for d in page + rest] == [d.delivery_id for d in everything]
    assert "secret" not in json.dumps(everything[0].to_json())


def test_run_forever_delivers_and_stops(
    db: Database,
    clock: FixedClock,
    hooks: WebhookService,
    dispatcher: Dispatcher,
    receiver: Receiver,
) -> None:
    _subscribe(hooks, receiver)
    _register_unit(db, clock)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(dispatcher.run_forever(stop, interval=0.02))
        for _ in range(250):
            if receiver.received:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(scenario())
    assert [d.status for d in _deliveries(db)] == ["delivered"]


def test_run_blocking_delivers_and_stops(
    db: Database,
    clock: FixedClock,
    hooks: WebhookService,
    dispatcher: Dispatcher,
    receiver: Receiver,
) -> None:
    _subscribe(hooks, receiver)
    stop = threading.Event()
    worker = threading.Thread(target=dispatcher.run_blocking, args=(stop, 0.02))
    worker.start()
    _register_unit(db, clock)
    deadline = time.monotonic() + 5
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    worker.join(timeout=5)
    assert not worker.is_alive()
    with db.transaction() as session:
        delivered = session.execute(
            select(func.count()).select_from(DeliveryRow).where(DeliveryRow.status == "delivered")
        ).scalar_one()
    assert delivered == 1


def test_a_redirect_is_not_followed_and_counts_as_a_failure(
    db: Database,
    clock: FixedClock,
    hooks: WebhookService,
    dispatcher: Dispatcher,
    receiver: Receiver,
) -> None:
    _subscribe(hooks, receiver)
    receiver.statuses.append(302)
    _register_unit(db, clock)
    assert dispatcher.run_once().retrying == 1
    [row] = _deliveries(db)
    assert row.last_error == "HTTP 302"
    assert len(receiver.received) == 1

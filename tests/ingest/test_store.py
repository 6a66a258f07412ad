"""The message store: identities, idempotence, refusals, queries (SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta

import pytest

from devicetrust.domain import FixedClock
from devicetrust.domain.errors import Conflict, InvalidInput
from devicetrust.domain.ids import PhysicalId
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.ingest import (
    FeedbackQueue,
    FeedbackStatus,
    InboundMessage,
    MessageKind,
    MessageStore,
    Outcome,
)
from devicetrust.ingest.rules import message_key, parse_payload
from devicetrust.store.database import Database

ACTOR = "operator:test"
D, T = MessageKind.DIAGNOSTICS, MessageKind.TELEMETRY


def unit(identity: IdentityService, name: str | None = None) -> PhysicalId:
    pid = identity.register(UnitSpec("RA-7", {}), actor=ACTOR).physical_id
    if name is not None:
        with contextlib.suppress(Conflict):  # the name exists already
            identity.create_logical(name, actor=ACTOR)
        identity.bind(name, pid, actor=ACTOR)
    return pid


def msg(pid: str, kind: MessageKind, body: object, clock: FixedClock, mid: str | None = None):
    return InboundMessage(PhysicalId(pid), kind, json.dumps(body).encode(), clock.now(), mid)


@pytest.fixture
def store(db: Database, clock: FixedClock) -> MessageStore:
    return MessageStore(db, clock, max_payload_bytes=1024)


def test_diagnostics_follow_the_logical_identity_across_a_replacement(
    store: MessageStore, identity: IdentityService, clock: FixedClock
) -> None:
    old = unit(identity, "line-03-left-welding-12")
    assert store.store(msg(old, D, {"parts_per_hour": 118}, clock)).outcome is Outcome.STORED
    assert store.store(msg(old, T, {"torque": [1.5, 2.0]}, clock)).outcome is Outcome.STORED
    clock.advance(timedelta(minutes=5))
    new = unit(identity)
    identity.replace("line-03-left-welding-12", new, actor=ACTOR)
    clock.advance(timedelta(minutes=5))
    results = store.store_batch(
        [msg(new, D, {"parts_per_hour": 121}, clock), msg(new, T, {"torque": [0.9]}, clock)]
    )
    assert [r.outcome for r in results] == [Outcome.STORED, Outcome.STORED]

    history = store.diagnostics_of("line-03-left-welding-12")
    assert [(m.physical_id, m.payload["parts_per_hour"]) for m in history] == [
        (new, 121),
        (old, 118),
    ]
    assert {m.logical_name for m in history} == {"line-03-left-welding-12"}
    assert [m.payload for m in store.telemetry_of(old)] == [{"torque": [1.5, 2.0]}]
    assert [m.payload for m in store.telemetry_of(new)] == [{"torque": [0.9]}]
    # since/until bound the time range
    assert len(store.diagnostics_of("line-03-left-welding-12", since=clock.now())) == 1


def test_history_survives_a_rename(
    store: MessageStore, identity: IdentityService, clock: FixedClock
) -> None:
    pid = unit(identity, "line-03-left-welding-12")
    store.store(msg(pid, D, {"n": 1}, clock))
    identity.rename("line-03-left-welding-12", "line-04-left-welding-01", actor=ACTOR)
    store.store(msg(pid, D, {"n": 2}, clock))
    found = store.diagnostics_of("line-04-left-welding-01")
    assert [(m.payload["n"], m.logical_name) for m in found] == [
        (2, "line-04-left-welding-01"),
        (1, "line-03-left-welding-12"),  # the name at receive time
    ]
    assert len(store.diagnostics_of("line-03-left-welding-12")) == 2  # former name, in grace


def test_a_redelivered_message_is_stored_once(
    store: MessageStore, identity: IdentityService, clock: FixedClock, db: Database
) -> None:
    pid = unit(identity, "robot-1")
    first = store.store(msg(pid, D, {"n": 1}, clock))
    again = store.store(msg(pid, D, {"n": 1}, clock))  # same bytes: a QoS 1 redelivery
    assert (first.outcome, again.outcome) == (Outcome.STORED, Outcome.DUPLICATE)
    assert first.message_key == again.message_key
    # with a device message id, the id is the key; twice in one batch is one row too
    batch = store.store_batch(
        [msg(pid, T, {"n": 2}, clock, "seq-7"), msg(pid, T, {"n": 2}, clock, "seq-7")]
    )
    assert [r.outcome for r in batch] == [Outcome.STORED, Outcome.DUPLICATE]
    assert store.store(msg(pid, T, {"n": 3}, clock, "seq-7")).outcome is Outcome.DUPLICATE
    assert len(store.diagnostics_of("robot-1")) == 1
    assert len(store.telemetry_of(pid)) == 1


def test_bad_messages_are_refused_one_by_one_never_failing_the_batch(
    store: MessageStore, identity: IdentityService, clock: FixedClock
) -> None:
    pid = unit(identity, "robot-1")
    loose = unit(identity)  # holds no logical identity
    stranger = PhysicalId("c2c38155-b0d2-48b6-82fd-22fe3b316224")
    now = clock.now()
    batch = [
        InboundMessage(pid, D, b"not json", now),
        InboundMessage(pid, D, b"[1, 2]", now),
        InboundMessage(pid, D, b'{"x": NaN}', now),
        InboundMessage(pid, D, b'{"x": "' + b"a" * 2000 + b'"}', now),
        InboundMessage(pid, D, b'{"ok": true}', now, "bad id with spaces"),
        InboundMessage(loose, D, b'{"ok": true}', now),
        InboundMessage(stranger, T, b'{"ok": true}', now),
        InboundMessage(loose, T, b'{"ok": true}', now),  # telemetry needs no logical identity
        InboundMessage(pid, D, b'{"ok": true}', now),
    ]
    results = store.store_batch(batch)
    assert [(r.outcome, r.reason) for r in results] == [
        (Outcome.REFUSED, "ingest.payload_not_json"),
        (Outcome.REFUSED, "ingest.payload_not_object"),
        (Outcome.REFUSED, "ingest.payload_not_json"),
        (Outcome.REFUSED, "ingest.payload_too_large"),
        (Outcome.REFUSED, "ingest.bad_message_id"),
        (Outcome.REFUSED, "ingest.unit_unbound"),
        (Outcome.REFUSED, "ingest.unit_unknown"),
        (Outcome.STORED, None),
        (Outcome.STORED, None),
    ]
    assert all(r.acknowledge for r in results)
    with pytest.raises(InvalidInput):
        store.diagnostics_of("robot-1", limit=0)


def test_rules_are_pure() -> None:
    assert parse_payload(b'{"a": 1}') == {"a": 1}
    assert message_key(D, b"x", None) != message_key(T, b"x", None)
    assert message_key(D, b"x", "m-1") == "m-1"


def test_feedback_is_routed_to_the_holder_at_publish_time(
    db: Database, identity: IdentityService, clock: FixedClock
) -> None:
    queue = FeedbackQueue(db, clock, max_pending=2)
    old = unit(identity, "robot-1")
    sent = queue.send("robot-1", {"speed": 0.8}, actor=ACTOR, ttl=timedelta(minutes=30))
    new = unit(identity)
    identity.replace("robot-1", new, actor=ACTOR)
    [routed] = queue.due()
    assert (routed.feedback.feedback_id, routed.physical_id) == (sent.feedback_id, new)
    assert routed.physical_id != old
    queue.mark_published(sent.feedback_id, new)
    published = queue.get(sent.feedback_id)
    assert (published.status, published.physical_id) == (FeedbackStatus.PUBLISHED, new)
    # expiry, and the per-identity cap
    late = queue.send("robot-1", {"n": 1}, actor=ACTOR, ttl=timedelta(seconds=5))
    queue.send("robot-1", {"n": 2}, actor=ACTOR)
    with pytest.raises(Conflict) as refused:
        queue.send("robot-1", {"n": 3}, actor=ACTOR)
    assert refused.value.code == "ingest.feedback_queue_full"
    clock.advance(timedelta(seconds=10))
    assert [r.feedback.payload for r in queue.due()] == [{"n": 2}]
    assert queue.get(late.feedback_id).status is FeedbackStatus.EXPIRED
    assert {"speed": 0.8} in [f.payload for f in queue.list_for("robot-1")]

"""`FeedbackDelivery` (runtime/feedback_delivery) on a real database with a recording
stand-in for the gateway's `publish_feedback`: status transitions, routing to the holder,
acknowledgments only from the unit it went to (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from devicetrust.domain import FixedClock
from devicetrust.domain.ids import PhysicalId
from devicetrust.gateway import FeedbackState
from devicetrust.ingest import FeedbackQueue, FeedbackStatus
from devicetrust.runtime import Platform
from devicetrust.runtime.feedback_delivery import FeedbackDelivery
from tests.data.conftest import ACTOR, NAME, OTHER, Fleet


@dataclass
class Gateway:
    """Answers `publish_feedback` with `state` and records what it was given."""

    state: FeedbackState = FeedbackState.SENT
    sent: list[tuple[PhysicalId, dict[str, object], str | None]] = field(default_factory=list)

    def __call__(self, physical_id: PhysicalId, payload: bytes, *,
                 feedback_id: str | None = None) -> FeedbackState:
        self.sent.append((physical_id, json.loads(payload), feedback_id))
        return self.state


@pytest.fixture
def queue(platform: Platform, clock: FixedClock) -> FeedbackQueue:
    return FeedbackQueue(platform.db, clock)


def test_a_connected_unit_gets_its_feedback_and_its_ack_marks_it_delivered(
    queue: FeedbackQueue, fleet: Fleet
) -> None:
    sent = queue.send(NAME, {"speed": 0.8}, actor=ACTOR)
    delivery, gateway = FeedbackDelivery(queue), Gateway(FeedbackState.QUEUED)
    delivery.run_once(gateway, online=())
    assert gateway.sent == []  # nobody online: nothing published, still pending
    assert queue.get(sent.feedback_id).status is FeedbackStatus.PENDING

    delivery.unit_connected(fleet.new)
    delivery.run_once(gateway, online=())
    assert gateway.sent == [(fleet.new, {"speed": 0.8}, sent.feedback_id)]
    published = queue.get(sent.feedback_id)
    assert (published.status, published.physical_id) == (FeedbackStatus.PUBLISHED, fleet.new)

    delivery.run_once(gateway, online=[fleet.new])
    assert len(gateway.sent) == 1  # published once only

    delivery.feedback_acked(fleet.old, sent.feedback_id)  # not the unit it went to
    delivery.feedback_acked(fleet.new, "0" * 36)  # not one of the queue's
    delivery.run_once(gateway, online=())
    assert queue.get(sent.feedback_id).status is FeedbackStatus.PUBLISHED
    delivery.feedback_acked(fleet.new, sent.feedback_id)
    delivery.run_once(gateway, online=())
    assert queue.get(sent.feedback_id).status is FeedbackStatus.DELIVERED


def test_no_session_leaves_it_pending_for_the_next_connection(
    queue: FeedbackQueue, fleet: Fleet
) -> None:
    sent = queue.send(NAME, {"n": 1}, actor=ACTOR)
    delivery = FeedbackDelivery(queue)
    for state in (FeedbackState.NO_SESSION, FeedbackState.QUOTA_EXCEEDED):
        delivery.run_once(Gateway(state), online=[fleet.new])
        assert queue.get(sent.feedback_id).status is FeedbackStatus.PENDING
    gateway = Gateway(FeedbackState.SENT)
    delivery.run_once(gateway, online=[fleet.new])
    assert [fid for _, _, fid in gateway.sent] == [sent.feedback_id]
    assert queue.get(sent.feedback_id).status is FeedbackStatus.PUBLISHED


def test_only_the_holder_gets_it_and_offline_holders_do_not_crowd_it_out(
    platform: Platform, queue: FeedbackQueue, fleet: Fleet
) -> None:
    platform.identity.bind(OTHER, fleet.free, actor=ACTOR)
    waiting = [queue.send(OTHER, {"n": n}, actor=ACTOR).feedback_id for n in range(3)]
    mine = queue.send(NAME, {"for": "new"}, actor=ACTOR)
    delivery, gateway = FeedbackDelivery(queue, batch=2), Gateway()
    delivery.run_once(gateway, online=[fleet.old, fleet.new])  # `free` is offline
    assert gateway.sent == [(fleet.new, {"for": "new"}, mine.feedback_id)]
    assert {queue.get(f).status for f in waiting} == {FeedbackStatus.PENDING}


def test_expired_feedback_is_never_published(
    queue: FeedbackQueue, fleet: Fleet, clock: FixedClock
) -> None:
    sent = queue.send(NAME, {"late": True}, actor=ACTOR, ttl=timedelta(minutes=5))
    clock.advance(timedelta(minutes=5))
    gateway = Gateway()
    FeedbackDelivery(queue).run_once(gateway, online=[fleet.new])
    assert gateway.sent == []
    assert queue.get(sent.feedback_id).status is FeedbackStatus.EXPIRED

"""`FeedbackDelivery` on its thread: units that connect while it works are taken in its next
round with one wake-up between them, and none is left behind for the periodic sweep -- each
unit's queued feedback is published as soon as it connects."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from devicetrust.domain.clock import Clock
from devicetrust.domain.ids import PhysicalId
from devicetrust.gateway import FeedbackState
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.ingest import FeedbackQueue
from devicetrust.runtime.feedback_delivery import FeedbackDelivery
from devicetrust.store.database import Database

ACTOR = "operator:test"
WAIT = 30.0  # seconds a liveness wait may take on a loaded machine; not a measurement


@dataclass
class Gateway:
    """A stand-in for `publish_feedback` that records which unit got what."""

    got: dict[PhysicalId, str] = field(default_factory=dict)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def __call__(
        self, physical_id: PhysicalId, payload: bytes, *, feedback_id: str | None = None
    ) -> FeedbackState:
        with self.arrived:
            self.got[physical_id] = feedback_id or ""
            self.arrived.notify_all()
        return FeedbackState.SENT

    def wait_for(self, units: list[PhysicalId]) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: all(u in self.got for u in units), WAIT)


def units_with_feedback(
    identity: IdentityService, queue: FeedbackQueue, count: int
) -> list[PhysicalId]:
    units = []
    for n in range(count):
        unit = identity.register(UnitSpec("arm-r7", {"n": str(n)}), actor=ACTOR).physical_id
        identity.create_logical(f"cell-{n:02d}", actor=ACTOR)
        identity.bind(f"cell-{n:02d}", unit, actor=ACTOR)
        queue.send(f"cell-{n:02d}", {"n": n}, actor=ACTOR)
        units.append(unit)
    return units


def test_units_connecting_together_are_served_in_one_round(db: Database, clock: Clock) -> None:
    identity, queue = IdentityService(db, clock), FeedbackQueue(db, clock)
    units = units_with_feedback(identity, queue, 3)
    delivery, gateway = FeedbackDelivery(queue), Gateway()
    for unit in units:
        delivery.unit_connected(unit)
    delivery.run_once(gateway, online=())
    assert sorted(gateway.got) == sorted(units)


def test_no_connecting_unit_waits_for_the_sweep(db: Database, clock: Clock) -> None:
    """The sweep is an hour away: only the connections' wake-ups can deliver. Units connect
    one by one and in bursts while the thread is busy with the previous ones."""
    identity, queue = IdentityService(db, clock), FeedbackQueue(db, clock)
    units = units_with_feedback(identity, queue, 12)
    delivery, gateway, stop = FeedbackDelivery(queue), Gateway(), threading.Event()
    thread = threading.Thread(target=delivery.run, args=(gateway, lambda: (), stop, 3600.0))
    thread.start()
    try:
        assert gateway.wait_for([])  # the first round (a sweep of nobody) has run
        for start, size in ((0, 1), (1, 1), (2, 4), (6, 1), (7, 5)):
            burst = units[start : start + size]
            for unit in burst:
                delivery.unit_connected(unit)
            assert gateway.wait_for(burst), f"units {start}..{start + size - 1} not served"
    finally:
        stop.set()
        delivery.wake()
        thread.join(WAIT)

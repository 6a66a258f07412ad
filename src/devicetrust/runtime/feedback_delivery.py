"""Feedback through the embedded gateway: the ingest's durable queue (`FeedbackQueue`) to the
devices' `{prefix}/{physical-id}/feedback` topics, and their acknowledgments back.

    delivery = FeedbackDelivery(FeedbackQueue(db, clock))
    live = LiveDevices(on_connected=delivery.unit_connected,
                       on_feedback_acked=delivery.feedback_acked)     # the gateway's hooks
    delivery.run(running.publish_feedback, online, stop, interval)    # on its own thread

The gateway's hooks only post an event (`SimpleQueue.put` never blocks its loop); the thread
does the database work. Each round it records the acknowledgments, then publishes what is
due: at once for a unit that just connected (its queued feedback), and every `interval` for
all connected units (feedback sent while they are online). Units that connect wait in a list
and wake the thread once; rounds are at least `spacing` (10 ms) apart, so under a stream of
connections the units of that moment are asked about in one query (usually answered
"nothing waits" by one read, `FeedbackQueue.due`) instead of one wake-up and query each. A
unit connecting when no round ran in the last `spacing` is served at once, any other within
`spacing` (a device subscribes after its CONNACK anyway; until then its session keeps it).
Status transitions:

    pending --gateway took it (SENT or QUEUED in the session)--> published
    published --the device's PUBACK for it (QoS 1)-------------> delivered

A unit that is offline without a session (NO_SESSION) or whose session queue is full
(QUOTA_EXCEEDED) leaves the feedback pending, for its next connection or round. Feedback is
asked for by connected unit (`FeedbackQueue.due(units=...)`), so offline holders never
crowd out the online ones. Never publishes to a unit that does not hold the identity (the
queue routes) and never marks a feedback delivered on another unit's acknowledgment.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.exc import OperationalError

from devicetrust.domain.errors import DeviceTrustError
from devicetrust.domain.ids import PhysicalId
from devicetrust.gateway import FeedbackState
from devicetrust.ingest.feedback import FeedbackQueue, wire_payload

_log = logging.getLogger(__name__)
CHUNK = 500  # connected units per query (SQLite binds at most 32,766 parameters)
_TAKEN = (FeedbackState.SENT, FeedbackState.QUEUED)


class Publish(Protocol):
    def __call__(
        self, physical_id: PhysicalId, payload: bytes, *, feedback_id: str | None = None
    ) -> FeedbackState: ...


@dataclass(frozen=True, slots=True)
class _Acked:
    physical_id: PhysicalId
    feedback_id: str


class _Wake:
    pass


_Event = _Acked | _Wake


class FeedbackDelivery:
    def __init__(
        self, feedback: FeedbackQueue, *, batch: int = 100, spacing: float = 0.01
    ) -> None:
        self._feedback = feedback
        self._batch = batch
        self._spacing = spacing
        self._events: queue.SimpleQueue[_Event] = queue.SimpleQueue()
        self._connected: deque[PhysicalId] = deque()  # appends are thread-safe
        self._wake_posted = False  # a wake for `_connected` is on its way to the thread

    # ---- called by the gateway's hooks, on its event loop: never block --------------------

    def unit_connected(self, physical_id: PhysicalId) -> None:
        self._connected.append(physical_id)
        if not self._wake_posted:  # the thread clears it before it takes the list
            self._wake_posted = True
            self._events.put(_Wake())

    def feedback_acked(self, physical_id: PhysicalId, feedback_id: str) -> None:
        self._events.put(_Acked(physical_id, feedback_id))

    def wake(self) -> None:
        self._events.put(_Wake())

    # ---- the delivery thread ---------------------------------------------------------------

    def run(
        self,
        publish: Publish,
        online: Callable[[], Collection[PhysicalId]],
        stop: threading.Event,
        interval: float,
    ) -> None:
        """Until `stop` is set (call `wake()` after setting it): rounds of `run_once`."""
        next_sweep = last_round = time.monotonic()
        while not stop.is_set():
            timeout = max(0.0, next_sweep - time.monotonic())
            events: list[_Event] = []
            with contextlib.suppress(queue.Empty):  # a round is due: go on without an event
                events.append(self._events.get(timeout=timeout))
            pause = last_round + self._spacing - time.monotonic()
            if pause > 0:  # the last round was a moment ago: gather this moment's units
                stop.wait(pause)
            sweep = time.monotonic() >= next_sweep
            if stop.is_set():
                return
            last_round = time.monotonic()
            try:
                self.run_once(publish, online() if sweep else (), events)
            except (OperationalError, DeviceTrustError, TimeoutError) as exc:
                _log.warning("feedback delivery failed, will retry: %s", type(exc).__name__)
            if sweep:
                next_sweep = time.monotonic() + interval

    def run_once(
        self,
        publish: Publish,
        online: Collection[PhysicalId],
        events: Collection[_Event] = (),
    ) -> None:
        """Record acknowledgments, then publish what is due to the units that just
        connected and to `online`."""
        pending = list(events)
        while True:  # drain without waiting
            try:
                pending.append(self._events.get_nowait())
            except queue.Empty:
                break
        # Cleared after the queue is drained (a wake taken there is for units taken below)
        # and before the list is taken: a unit added later posts a wake of its own.
        self._wake_posted = False
        units: set[PhysicalId] = set(online)
        while self._connected:
            units.add(self._connected.popleft())
        for event in pending:
            if isinstance(event, _Acked) and not self._feedback.mark_delivered(
                event.feedback_id, event.physical_id
            ):
                _log.debug("ack of %s by %s matched no published feedback",
                           event.feedback_id, event.physical_id)
        ordered = sorted(units)
        for start in range(0, len(ordered), CHUNK):
            self._publish(publish, ordered[start : start + CHUNK])

    def _publish(self, publish: Publish, units: list[PhysicalId]) -> None:
        for routed in self._feedback.due(limit=self._batch, units=units):
            item = routed.feedback
            state = publish(routed.physical_id, wire_payload(item.payload),
                            feedback_id=item.feedback_id)
            if state in _TAKEN:
                self._feedback.mark_published(item.feedback_id, routed.physical_id)
            else:  # offline without a session, or its queue is full: stays pending
                _log.debug("feedback %s for %s: %s", item.feedback_id, routed.physical_id,
                           state.value)

"""`SessionStore`: the embedded gateway's persistent sessions in the database, so that they
survive a restart of `devicetrust serve`.

    store = SessionStore(db, clock)
    gateway = Gateway(..., session_listener=store, restored=store.load())
    store.flush()                    # a thread, every ~0.25 s: the listener only queues

What is kept per unit (`gateway_sessions`): the session expiry interval, the feedback
subscription's QoS, and when the session ends if the device does not come back (NULL while
it is connected: after a crash or a stop it then lives its whole interval from the restart).
The feedback a session held is not copied: it is the unit's feedback in status `published`
and not yet `delivered` (`FeedbackQueue.unacknowledged`), which `load` puts back in the
session's queue when its subscription is QoS 1 (QoS 0 feedback is never acknowledged, so
it is not sent twice). After a restart it goes out again as new publications, not with DUP:
the packet ids of the old process are gone.

The listener methods run on the gateway's loop and only append to a queue; `flush` writes
the latest state of each unit in one transaction. Never restores a session that expired or
was forgotten (clean start, kick), and never a session of another unit than its own.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from devicetrust.domain.clock import Clock
from devicetrust.domain.ids import PhysicalId
from devicetrust.ingest.feedback import FeedbackQueue, wire_payload
from devicetrust.store.database import Database
from devicetrust.store.models_data_plane import GatewaySessionRow

from .codec import QoS
from .sessions import Feedback, RestoredSession


@dataclass(frozen=True, slots=True)
class _Saved:
    physical_id: PhysicalId
    expiry: int
    subscription: QoS | None
    connected: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class _Forgotten:
    physical_id: PhysicalId


class SessionStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._feedback = FeedbackQueue(db, clock)
        self._events: queue.SimpleQueue[_Saved | _Forgotten] = queue.SimpleQueue()

    # ---- `SessionListener`, on the gateway's loop: never block -----------------------------

    def session_saved(self, physical_id: PhysicalId, expiry: int, subscription: QoS | None, *,
                      connected: bool) -> None:
        self._events.put(_Saved(physical_id, expiry, subscription, connected,
                                self._clock.now()))

    def session_forgotten(self, physical_id: PhysicalId) -> None:
        self._events.put(_Forgotten(physical_id))

    # ---- on a thread -------------------------------------------------------------------------

    def flush(self) -> int:
        """Write what was reported since the last flush; returns the units written."""
        latest: dict[PhysicalId, _Saved | _Forgotten] = {}
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            latest[event.physical_id] = event
        if not latest:
            return 0
        with self._db.transaction() as session:
            session.execute(delete(GatewaySessionRow).where(
                GatewaySessionRow.physical_id.in_(sorted(latest))))
            session.flush()
            for event in latest.values():
                if isinstance(event, _Saved):
                    session.add(GatewaySessionRow(
                        physical_id=event.physical_id, expiry_seconds=event.expiry,
                        subscription_qos=None if event.subscription is None
                        else int(event.subscription),
                        ends_at=None if event.connected
                        else event.at + timedelta(seconds=event.expiry),
                        updated_at=event.at))
        return len(latest)

    def load(self) -> list[RestoredSession]:
        """The sessions to restore at start; drops those that expired meanwhile."""
        now = self._clock.now()
        with self._db.transaction() as session:
            session.execute(delete(GatewaySessionRow).where(GatewaySessionRow.ends_at <= now))
            rows = list(session.execute(select(GatewaySessionRow)).scalars())
        restored = []
        for row in rows:
            qos = None if row.subscription_qos is None else QoS(row.subscription_qos)
            remaining = (float(row.expiry_seconds) if row.ends_at is None
                         else (row.ends_at - now).total_seconds())
            feedback: tuple[Feedback, ...] = ()
            if qos is QoS.AT_LEAST_ONCE:
                feedback = tuple(
                    Feedback(item.feedback_id, wire_payload(item.payload))
                    for item in self._feedback.unacknowledged(row.physical_id))
            restored.append(RestoredSession(PhysicalId(row.physical_id), row.expiry_seconds,
                                            remaining, qos, feedback))
        return restored

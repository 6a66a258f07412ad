"""Live connections and sessions by physical id: takeover, kick, persistent sessions.

One physical id has at most one live connection. `attach` is called only for a connection
whose credential proved that physical id (the client id must equal it, see `connection`),
so a client that is unauthenticated or proved another identity can never reach the session
of this one: the new authenticated connection replaces the old (MQTT 5.0 section 3.1.4: the
old one gets DISCONNECT 0x8E Session taken over and is closed).

A session holds what outlives a connection when the device asked for it (clean start 0 /
clean session 0): its feedback subscription, feedback queued for it and QoS 1 feedback sent
but not acknowledged (resent with DUP on reconnect). It lives in memory for its session
expiry interval (capped by the configuration) after the connection ends. A kick
(revocation) forgets it at once. With a `SessionListener` (`session_store.SessionStore`)
every change of a persistent session is reported, and `restore` brings sessions back after
a restart: the subscription, and the feedback that was sent but not acknowledged (resent,
as new publications, when the device comes back).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Protocol

from devicetrust.domain.ids import PhysicalId

from .codec import QoS, ReasonCode


@dataclass(frozen=True, slots=True)
class Feedback:
    feedback_id: str
    payload: bytes


@dataclass(slots=True)
class DeviceSession:
    physical_id: PhysicalId
    expiry: int  # seconds the session outlives its connection; 0: ends with it
    subscription: QoS | None = None  # granted QoS of the feedback subscription
    queued: deque[Feedback] = field(default_factory=deque)
    inflight: OrderedDict[int, Feedback] = field(default_factory=OrderedDict)
    next_packet_id: int = 1
    discard: asyncio.TimerHandle | None = None
    stored: bool = False  # reported to the listener as saved (a clean one is never stored)

    def allocate_packet_id(self) -> int:
        while True:
            packet_id = self.next_packet_id
            self.next_packet_id = packet_id % 0xFFFF + 1
            if packet_id not in self.inflight:
                return packet_id


@dataclass(frozen=True, slots=True)
class RestoredSession:
    """A persistent session as it was before a restart."""

    physical_id: PhysicalId
    expiry: int  # its session expiry interval, seconds
    remaining: float  # seconds it still has to live if the device does not come back
    subscription: QoS | None
    feedback: tuple[Feedback, ...] = ()  # sent before the restart, not acknowledged


class SessionListener(Protocol):
    """Told about persistent sessions, on the gateway's loop: must not block it."""

    def session_saved(self, physical_id: PhysicalId, expiry: int, subscription: QoS | None, *,
                      connected: bool) -> None: ...

    def session_forgotten(self, physical_id: PhysicalId) -> None: ...


class _NoListener:
    def session_saved(self, physical_id: PhysicalId, expiry: int, subscription: QoS | None, *,
                      connected: bool) -> None:
        return None

    def session_forgotten(self, physical_id: PhysicalId) -> None:
        return None


class LiveConnection(Protocol):
    def disconnect(self, reason: ReasonCode, *, store_will: bool) -> None:
        """Send DISCONNECT (MQTT 5) and close; store the will only if `store_will`."""
        ...

    def pump_feedback(self) -> None:
        """Send queued feedback the session's window allows."""
        ...


class SessionRegistry:
    def __init__(self, listener: SessionListener | None = None) -> None:
        self._live: dict[PhysicalId, LiveConnection] = {}
        self._sessions: dict[PhysicalId, DeviceSession] = {}
        self._listener: SessionListener = listener if listener is not None else _NoListener()

    def __len__(self) -> int:
        return len(self._live)

    def live(self, physical_id: PhysicalId) -> LiveConnection | None:
        return self._live.get(physical_id)

    def session(self, physical_id: PhysicalId) -> DeviceSession | None:
        return self._sessions.get(physical_id)

    def live_connections(self) -> list[LiveConnection]:
        return list(self._live.values())

    def attach(self, physical_id: PhysicalId, connection: LiveConnection, *,
               clean_start: bool, expiry: int) -> tuple[DeviceSession, bool, bool]:
        """Make `connection` the live one: (session, session present, took over)."""
        old = self._live.pop(physical_id, None)
        if old is not None:
            old.disconnect(ReasonCode.SESSION_TAKEN_OVER, store_will=True)
        kept = self._sessions.pop(physical_id, None)
        if kept is not None and kept.discard is not None:
            kept.discard.cancel()
            kept.discard = None
        present = kept is not None and not clean_start
        session = kept if kept is not None and present else DeviceSession(physical_id, expiry)
        if kept is not None and kept.stored and session is not kept:
            self._listener.session_forgotten(physical_id)  # clean start: the old one ends
        session.expiry = expiry
        self._live[physical_id] = connection
        self._sessions[physical_id] = session
        self.changed(session, connected=True)
        return session, present, old is not None

    def changed(self, session: DeviceSession, *, connected: bool) -> None:
        """Report the session's state (after attach, a subscription change, detach)."""
        if session.expiry > 0:
            self._listener.session_saved(session.physical_id, session.expiry,
                                         session.subscription, connected=connected)
            session.stored = True
        elif session.stored:  # a DISCONNECT set its expiry to 0
            self._listener.session_forgotten(session.physical_id)
            session.stored = False

    def restore(self, restored: RestoredSession) -> None:
        """Bring back a persistent session after a restart (call on the loop, before any
        device connects); it expires `remaining` seconds from now unless the device returns."""
        session = DeviceSession(restored.physical_id, restored.expiry,
                                subscription=restored.subscription,
                                queued=deque(restored.feedback), stored=True)
        self._sessions[restored.physical_id] = session
        loop = asyncio.get_running_loop()
        session.discard = loop.call_later(max(restored.remaining, 0.0), self._expire,
                                          restored.physical_id, session)

    def detach(self, physical_id: PhysicalId, connection: LiveConnection) -> None:
        """The connection ended: forget its session now or after its expiry interval."""
        if self._live.get(physical_id) is not connection:
            return  # taken over or kicked: the registry moved on already
        del self._live[physical_id]
        session = self._sessions.get(physical_id)
        if session is None:
            return
        self.changed(session, connected=False)
        if session.expiry <= 0:
            del self._sessions[physical_id]
            return
        loop = asyncio.get_running_loop()
        session.discard = loop.call_later(session.expiry, self._expire, physical_id, session)

    def _expire(self, physical_id: PhysicalId, session: DeviceSession) -> None:
        if self._sessions.get(physical_id) is session and physical_id not in self._live:
            del self._sessions[physical_id]
            if session.stored:
                self._listener.session_forgotten(physical_id)

    def kick(self, physical_id: PhysicalId, reason: ReasonCode) -> bool:
        """Close the live connection (its will is not stored) and forget the session."""
        session = self._sessions.pop(physical_id, None)
        if session is not None:
            if session.discard is not None:
                session.discard.cancel()
            if session.stored:
                self._listener.session_forgotten(physical_id)
        connection = self._live.pop(physical_id, None)
        if connection is None:
            return False
        connection.disconnect(reason, store_will=False)
        return True

    def close_all(self, reason: ReasonCode) -> None:
        """Shutdown: close every connection and drop the sessions from memory -- not from
        the listener's store, so that persistent ones are restored at the next start."""
        for physical_id in list(self._live):
            connection = self._live.pop(physical_id)
            connection.disconnect(reason, store_will=False)
        for session in self._sessions.values():
            if session.discard is not None:
                session.discard.cancel()
        self._sessions.clear()

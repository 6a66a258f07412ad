"""Live connections and sessions by physical id: takeover, kick, persistent sessions.

One physical id has at most one live connection. `attach` is called only for a connection
whose credential proved that physical id (the client id must equal it, see `connection`),
so a client that is unauthenticated or proved another identity can never reach the session
of this one: the new authenticated connection replaces the old (MQTT 5.0 section 3.1.4: the
old one gets DISCONNECT 0x8E Session taken over and is closed).

A session holds what outlives a connection when the device asked for it (clean start 0 /
clean session 0): its feedback subscription, feedback queued for it and QoS 1 feedback sent
but not acknowledged (resent with DUP on reconnect). It lives in memory for its session
expiry interval (capped by the configuration) after the connection ends; a gateway restart
forgets it. A kick (revocation) forgets it at once.
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

    def allocate_packet_id(self) -> int:
        while True:
            packet_id = self.next_packet_id
            self.next_packet_id = packet_id % 0xFFFF + 1
            if packet_id not in self.inflight:
                return packet_id


class LiveConnection(Protocol):
    def disconnect(self, reason: ReasonCode, *, store_will: bool) -> None:
        """Send DISCONNECT (MQTT 5) and close; store the will only if `store_will`."""
        ...

    def pump_feedback(self) -> None:
        """Send queued feedback the session's window allows."""
        ...


class SessionRegistry:
    def __init__(self) -> None:
        self._live: dict[PhysicalId, LiveConnection] = {}
        self._sessions: dict[PhysicalId, DeviceSession] = {}

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
        session.expiry = expiry
        self._live[physical_id] = connection
        self._sessions[physical_id] = session
        return session, present, old is not None

    def detach(self, physical_id: PhysicalId, connection: LiveConnection) -> None:
        """The connection ended: forget its session now or after its expiry interval."""
        if self._live.get(physical_id) is not connection:
            return  # taken over or kicked: the registry moved on already
        del self._live[physical_id]
        session = self._sessions.get(physical_id)
        if session is None:
            return
        if session.expiry <= 0:
            del self._sessions[physical_id]
            return
        loop = asyncio.get_running_loop()
        session.discard = loop.call_later(session.expiry, self._expire, physical_id, session)

    def _expire(self, physical_id: PhysicalId, session: DeviceSession) -> None:
        if self._sessions.get(physical_id) is session and physical_id not in self._live:
            del self._sessions[physical_id]

    def kick(self, physical_id: PhysicalId, reason: ReasonCode) -> bool:
        """Close the live connection (its will is not stored) and forget the session."""
        session = self._sessions.pop(physical_id, None)
        if session is not None and session.discard is not None:
            session.discard.cancel()
        connection = self._live.pop(physical_id, None)
        if connection is None:
            return False
        connection.disconnect(reason, store_will=False)
        return True

    def close_all(self, reason: ReasonCode) -> None:
        for physical_id in list(self._live):
            connection = self._live.pop(physical_id)
            connection.disconnect(reason, store_will=False)
        for session in self._sessions.values():
            if session.discard is not None:
                session.discard.cancel()
        self._sessions.clear()

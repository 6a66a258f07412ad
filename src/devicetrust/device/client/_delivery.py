"""Delivery of the offline buffer over one connection: in order, at most `window` messages
in flight, a message deleted only at its PUBACK.

Owned by the client's worker thread alone (paho's thread only queues acknowledgements), so
a PUBACK can never be matched before its PUBLISH was recorded. `restart()` on every new
connection: everything unacknowledged is sent again with its own msg-id, which the gateway
stores once. A refusal (reason code >= 0x80: payload invalid, not authorized) deletes the
message and counts it: it would never be accepted and would hold back all behind it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from devicetrust.device.client._buffer import BufferedMessage, OfflineBuffer

_log = logging.getLogger(__name__)
REFUSAL = 0x80


class Delivery:
    def __init__(self, buffer: OfflineBuffer, window: int = 32) -> None:
        if window < 1:
            raise ValueError("the delivery window is at least 1")
        self._buffer = buffer
        self._window = window
        self._inflight: dict[int, int] = {}  # paho mid -> buffer seq
        self._cursor = 0  # the last seq sent on this connection
        self.rejected = 0

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def restart(self) -> None:
        """A new connection: nothing is in flight on it, send from the oldest message."""
        self._inflight.clear()
        self._cursor = 0

    def acknowledged(self, mid: int, reason: int) -> None:
        seq = self._inflight.pop(mid, None)
        if seq is None:
            return  # not ours on this connection (a late PUBACK of a replaced one)
        if reason >= REFUSAL:
            self.rejected += 1
            _log.warning("the gateway refused buffered message #%d (0x%02X)", seq, reason)
        self._buffer.remove(seq)

    def pump(self, publish: Callable[[BufferedMessage], int]) -> int:
        """Send the next messages while the window has room; returns how many."""
        room = self._window - len(self._inflight)
        if room <= 0:
            return 0
        sent = 0
        for message in self._buffer.after(self._cursor, room):
            self._inflight[publish(message)] = message.seq
            self._cursor = message.seq
            sent += 1
        return sent

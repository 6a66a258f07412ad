"""Group commit: messages from every connection are stored in batches through one sink.

Each submitted message gets a future that resolves, with the sink's `SinkResult` for it
(accepted, or refused with a reason), when the batch holding it was stored (or fails with
the sink's error). One flusher task takes everything waiting (up to `max_batch`)
and calls `MessageSink.store` once; while it waits, the next batch gathers, so under load a
batch grows to what the database can absorb per round trip. Batches are stored and resolved
in submission order, so the PUBACKs of one connection leave in the order of its PUBLISHes
(MQTT 5.0 section 4.6).

Never resolves a future before `store` returned, and never drops a message it accepted: a
failed batch fails every future in it, and the connections that sent them close without
acknowledging (the devices resend).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from .metrics import GatewayCounters
from .sink import DeviceMessage, MessageSink, SinkResult

_log = logging.getLogger(__name__)


class StoreQueue:
    def __init__(self, sink: MessageSink, *, max_batch: int, max_pending: int,
                 counters: GatewayCounters | None = None) -> None:
        self._sink = sink
        self._counters = counters if counters is not None else GatewayCounters()
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._waiting: deque[tuple[DeviceMessage, asyncio.Future[SinkResult]]] = deque()
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def __len__(self) -> int:
        return len(self._waiting)

    async def room(self) -> None:
        """Wait until fewer than `max_pending` messages are waiting (backpressure)."""
        await self._room.wait()

    def submit(self, message: DeviceMessage) -> asyncio.Future[SinkResult]:
        future: asyncio.Future[SinkResult] = asyncio.get_running_loop().create_future()
        self._waiting.append((message, future))
        if len(self._waiting) >= self._max_pending:
            self._room.clear()
        self._wake.set()
        return future

    async def run(self) -> None:
        """The flusher: runs until cancelled, then stores what is still waiting."""
        try:
            while True:
                await self._wake.wait()
                await self.flush()
        finally:
            if self._waiting:
                await asyncio.shield(self.flush())

    async def flush(self) -> None:
        """Store everything waiting now, batch by batch."""
        while self._waiting:
            batch = [self._waiting.popleft()
                     for _ in range(min(self._max_batch, len(self._waiting)))]
            if len(self._waiting) < self._max_pending:
                self._room.set()
            self._counters.store_batches += 1
            try:
                results = await self._sink.store([message for message, _ in batch])
                if len(results) != len(batch):
                    # Fail closed: a sink that lost count cannot say which one it stored.
                    raise RuntimeError(f"sink answered {len(results)} of {len(batch)}")
            except Exception as exc:
                # Any sink failure fails the batch: every waiting connection gets it
                # and none of them acknowledges.
                _log.warning("message sink failed for a batch of %d: %r", len(batch), exc)
                self._counters.store_failures += 1
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                self._counters.messages_stored += result.refused is None
                if not future.done():
                    future.set_result(result)
        self._wake.clear()

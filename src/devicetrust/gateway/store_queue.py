"""Group commit: messages from every connection are stored in batches through one sink.

Each message is put with the `StoreClient` that waits for it (a connection) and a tag of the
client's (its packet id). When the batch holding it was stored, each client of the batch is
told once, with its own messages of the batch in the order it put them, and the sink's
`SinkResult` for each (accepted, or refused with a reason) or the sink's error: one call per
client and batch, not one future and callback per message. `submit` gives a future per
message instead, for callers off the hot path. The flusher takes everything waiting (up to
`max_batch`) and calls
`MessageSink.store` once for it; while that call runs, the next batch gathers, so under load
a batch grows to what the database can absorb per commit. Up to `max_concurrent` batches are
in the sink at once (the next one is written while the previous one's commit waits for the
disk); the sink receives them in submission order, and their clients are told strictly in
that order, a batch only after every earlier one, so the PUBACKs of one connection leave
in the order of its PUBLISHes (MQTT 5.0 section 4.6) however the commits overlap.

Never tells a client before `store` returned for the batch, and never drops a message it
accepted: a failed batch fails every message in it, and the connections that sent them close
without acknowledging (the devices resend).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

from .metrics import GatewayCounters
from .sink import DeviceMessage, MessageSink, SinkResult

_log = logging.getLogger(__name__)


class StoreClient(Protocol):
    def stored(self, tags: list[Any], messages: list[DeviceMessage],
               results: Sequence[SinkResult] | BaseException) -> None:
        """The client's messages of one batch (and their tags, in the order they were put)
        are stored, with one result each, or the batch failed with the exception."""
        ...


_Entry = tuple[DeviceMessage, StoreClient, Any]


class _Futures:
    """The client behind `submit`: one future per message, each tag a future."""

    def stored(self, tags: list[Any], messages: list[DeviceMessage],
               results: Sequence[SinkResult] | BaseException) -> None:
        for i, future in enumerate(tags):
            if future.done():
                continue
            if isinstance(results, BaseException):
                future.set_exception(results)
            else:
                future.set_result(results[i])


_FUTURES = _Futures()


class StoreQueue:
    def __init__(self, sink: MessageSink, *, max_batch: int, max_pending: int,
                 max_concurrent: int = 1, counters: GatewayCounters | None = None) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self._sink = sink
        self._counters = counters if counters is not None else GatewayCounters()
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._max_concurrent = max_concurrent
        self._waiting: deque[_Entry] = deque()
        self._running: deque[asyncio.Task[None]] = deque()  # in submission order
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def __len__(self) -> int:
        return len(self._waiting)

    async def room(self) -> None:
        """Wait until fewer than `max_pending` messages are waiting (backpressure)."""
        await self._room.wait()

    def put(self, message: DeviceMessage, client: StoreClient, tag: Any) -> None:
        """Store `message`; `client.stored` hears of it with `tag` once its batch is done."""
        waiting = self._waiting
        waiting.append((message, client, tag))
        if len(waiting) >= self._max_pending:
            self._room.clear()
        self._wake.set()

    def submit(self, message: DeviceMessage) -> asyncio.Future[SinkResult]:
        """Store `message`; the future resolves with its result once its batch is done."""
        future: asyncio.Future[SinkResult] = asyncio.get_running_loop().create_future()
        self.put(message, _FUTURES, future)
        return future

    async def run(self) -> None:
        """The flusher: runs until cancelled, then stores what is still waiting."""
        try:
            while True:
                await self._wake.wait()
                await self._launch_waiting()
        finally:
            # Shielded: the batches already in the sink and those still waiting are stored
            # (or failed) to the end, whoever cancels this.
            await asyncio.shield(self.flush())

    async def flush(self) -> None:
        """Store everything waiting now, batch by batch, and wait until every batch in the
        sink is resolved."""
        await self._launch_waiting()
        while self._running:
            await asyncio.wait({self._running[-1]})
            self._forget_done()

    async def _launch_waiting(self) -> None:
        """Hand the waiting messages to the sink, waiting for a free slot when
        `max_concurrent` batches are in it already; returns once none is waiting."""
        while self._waiting:
            self._forget_done()
            if len(self._running) >= self._max_concurrent:
                await asyncio.wait({self._running[0]})  # resolved in order: oldest first
                continue
            batch = [self._waiting.popleft()
                     for _ in range(min(self._max_batch, len(self._waiting)))]
            if len(self._waiting) < self._max_pending:
                self._room.set()
            self._counters.store_batches += 1
            previous = self._running[-1] if self._running else None
            self._running.append(asyncio.create_task(self._store(batch, previous),
                                                     name="gateway-store-batch"))
        self._wake.clear()

    def _forget_done(self) -> None:
        while self._running and self._running[0].done():
            self._running.popleft()

    async def _store(self, batch: list[_Entry], previous: asyncio.Task[None] | None) -> None:
        results: Sequence[SinkResult] = ()
        error: BaseException | None = None
        try:
            results = await self._sink.store([entry[0] for entry in batch])
            if len(results) != len(batch):
                # Fail closed: a sink that lost count cannot say which one it stored.
                raise RuntimeError(f"sink answered {len(results)} of {len(batch)}")
        except Exception as exc:
            # Any sink failure fails the batch: every waiting connection gets it and none
            # of them acknowledges.
            _log.warning("message sink failed for a batch of %d: %r", len(batch), exc)
            self._counters.store_failures += 1
            error = exc
        if previous is not None and not previous.done():
            await asyncio.wait({previous})  # resolve in submission order
        # Each client's share of the batch, in batch order: (tags, messages, results).
        shares: dict[StoreClient, tuple[list[Any], list[DeviceMessage], list[SinkResult]]] = {}
        stored = 0
        for i, (message, client, tag) in enumerate(batch):
            share = shares.get(client)
            if share is None:
                share = shares[client] = ([], [], [])
            share[0].append(tag)
            share[1].append(message)
            if error is None:
                result = results[i]
                share[2].append(result)
                stored += result.refused is None
        self._counters.messages_stored += stored
        loop = asyncio.get_running_loop()
        for client, (tags, messages, mine) in shares.items():
            # One callback per client: a client's fault cannot keep the others waiting.
            loop.call_soon(client.stored, tags, messages, mine if error is None else error)

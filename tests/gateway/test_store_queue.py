"""Group commit with several batches in the sink: acknowledgements keep submission order
however the sink's calls finish, a failed batch fails alone, and the ingest sink writes
its calls in call order whatever order its threads run in."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from devicetrust.domain import PhysicalId
from devicetrust.gateway import ACCEPTED, DeviceMessage, SinkResult
from devicetrust.gateway.sink import MessageKind
from devicetrust.gateway.store_queue import StoreQueue

PID = PhysicalId("c2c38155-b0d2-48b6-82fd-22fe3b316224")
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def message(n: int) -> DeviceMessage:
    return DeviceMessage(str(n), MessageKind.TELEMETRY, PID, None, b"{}", NOW)


class GatedSink:
    """The first call waits for `release`; later ones answer at once (or fail when their
    first message id is in `fail`)."""

    def __init__(self, fail: frozenset[str] = frozenset()) -> None:
        self.release = asyncio.Event()
        self.calls: list[list[str | None]] = []
        self._fail = fail

    async def store(self, messages: Sequence[DeviceMessage]) -> list[SinkResult]:
        self.calls.append([m.message_id for m in messages])
        if len(self.calls) == 1:
            await self.release.wait()
        if messages[0].message_id in self._fail:
            raise OSError("database unavailable")
        return [ACCEPTED] * len(messages)


def test_later_batches_are_acknowledged_only_after_earlier_ones() -> None:
    async def scenario() -> tuple[list[str], list[list[str | None]]]:
        sink = GatedSink()
        queue = StoreQueue(sink, max_batch=2, max_pending=100, max_concurrent=3)
        flusher = asyncio.create_task(queue.run())
        resolved: list[str] = []
        futures = []
        for n in range(6):
            future = queue.submit(message(n))
            future.add_done_callback(lambda _f, n=n: resolved.append(str(n)))
            futures.append(future)
        async with asyncio.timeout(10):
            while len(sink.calls) < 3:  # three batches in the sink, the first one held
                await asyncio.sleep(0)
        for _ in range(20):
            await asyncio.sleep(0)
        assert resolved == []  # batches 2 and 3 were stored, but wait for batch 1
        sink.release.set()
        await asyncio.gather(*futures)
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)
        return resolved, sink.calls

    resolved, calls = asyncio.run(scenario())
    assert resolved == [str(n) for n in range(6)]
    assert calls == [["0", "1"], ["2", "3"], ["4", "5"]]


def test_a_failed_batch_fails_alone_and_in_order() -> None:
    async def scenario() -> list[tuple[str, bool]]:
        sink = GatedSink(fail=frozenset({"2"}))
        queue = StoreQueue(sink, max_batch=2, max_pending=100, max_concurrent=2)
        flusher = asyncio.create_task(queue.run())
        outcomes: list[tuple[str, bool]] = []
        futures = []
        for n in range(6):
            future = queue.submit(message(n))
            future.add_done_callback(
                lambda f, n=n: outcomes.append((str(n), f.exception() is None))
            )
            futures.append(future)
        async with asyncio.timeout(10):
            while len(sink.calls) < 2:
                await asyncio.sleep(0)
        sink.release.set()
        await asyncio.gather(*futures, return_exceptions=True)
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)
        return outcomes

    outcomes = asyncio.run(scenario())
    assert outcomes == [
        ("0", True),
        ("1", True),
        ("2", False),
        ("3", False),
        ("4", True),
        ("5", True),
    ]


def test_stopping_the_flusher_stores_what_was_waiting() -> None:
    async def scenario() -> list[bool]:
        sink = GatedSink()
        sink.release.set()
        queue = StoreQueue(sink, max_batch=1, max_pending=100, max_concurrent=2)
        flusher = asyncio.create_task(queue.run())
        await asyncio.sleep(0)  # the flusher waits for work
        futures = [queue.submit(message(n)) for n in range(5)]
        flusher.cancel()  # before it woke: everything is still waiting
        await asyncio.gather(flusher, return_exceptions=True)
        return [f.done() and f.exception() is None for f in futures]

    assert asyncio.run(scenario()) == [True] * 5

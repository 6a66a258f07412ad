"""`IngestSink`: the gateway's `MessageSink` over the ingest `MessageStore` (the database).

The store's batch insert is synchronous database work: it runs in the sink's own worker
threads, never on the event loop, in chunks of at most `ingest.store.MAX_BATCH`, one
transaction each. Each `store` call is one trip to a worker thread, which converts the
messages, prepares its chunks (checked, transaction begun: `MessageStore.prepare_batch`),
waits for its turn -- calls write in the order `store` was called, one at a time (`_Turns`)
-- writes them, and commits them. The store queue keeps several batches in the sink, so the
next batch is checked and written while the previous one's commit waits for the disk, and
rows keep the order the gateway received them in. `store` returns only once every chunk of
its call is committed. The store gives every message a final outcome (stored, duplicate,
refused for a bad payload): a refusal is returned with its reason code (the gateway tells
the device) and counted here by reason.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from devicetrust.ingest.records import InboundMessage, Outcome, StoreResult
from devicetrust.ingest.store import MAX_BATCH, MessageStore, PreparedBatch, WrittenBatch

from .sink import ACCEPTED, DeviceMessage, SinkResult

_THREADS = 4  # `store` calls at work at once; more wait in the executor's queue, in order


class _Turns:
    """Tickets handed out in call order on the event loop; a worker thread with ticket n
    writes after n-1 has written (or failed) and before n+1. Every ticket's turn is
    taken and passed exactly once, whatever happens in it, so no later one waits forever;
    the executor runs submissions in order, so the holder of the next turn always runs."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._current = 0
        self._issued = 0

    def ticket(self) -> int:
        issued, self._issued = self._issued, self._issued + 1
        return issued

    @contextmanager
    def turn(self, ticket: int) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: self._current == ticket)
        try:
            yield
        finally:
            with self._changed:
                self._current += 1
                self._changed.notify_all()


class IngestSink:
    def __init__(self, store: MessageStore) -> None:
        self._store = store
        self.refusals: Counter[str] = Counter()  # by the store's reason code
        self._turns = _Turns()
        self._threads = ThreadPoolExecutor(_THREADS, thread_name_prefix="gateway-ingest")
        weakref.finalize(self, self._threads.shutdown, wait=False)

    @property
    def refused(self) -> int:
        """Messages the store refused (bad payload, schema, unbound unit, ...)."""
        return sum(self.refusals.values())

    async def store(self, messages: Sequence[DeviceMessage]) -> list[SinkResult]:
        # The ticket and the submission in one step: the executor's queue keeps their order.
        # Shielded: a thread that started finishes its transactions (committed, or rolled
        # back on error) even if the caller stops waiting.
        done = asyncio.get_running_loop().run_in_executor(
            self._threads, self._store_in_turn, messages, self._turns.ticket())
        results, refused = await asyncio.shield(done)
        for reason in refused:  # counted here, on the loop: the threads never share it
            self.refusals[reason] += 1
        return results

    def _store_in_turn(self, messages: Sequence[DeviceMessage],
                       ticket: int) -> tuple[list[SinkResult], list[str]]:
        """In a worker thread: prepare, write in turn, commit; the answer per message and
        the reasons of the refused ones."""
        prepared: list[PreparedBatch] = []
        written: list[WrittenBatch] = []
        try:
            try:
                inbound = [InboundMessage(m.physical_id, m.kind, m.payload, m.received_at,
                                          message_id=m.message_id, content_type=m.content_type)
                           for m in messages]
                chunks = [inbound[start : start + MAX_BATCH]
                          for start in range(0, len(inbound), MAX_BATCH)]
                prepared.extend(self._store.prepare_batch(chunk) for chunk in chunks)
            finally:
                with self._turns.turn(ticket):  # taken and passed even if preparing failed
                    if prepared and len(prepared) == len(chunks):
                        written.extend(self._store.write(batch) for batch in prepared)
            results: list[StoreResult] = []
            while written:
                results.extend(written.pop(0).commit())
            return _answers(results)
        finally:
            for ready in prepared:
                ready.discard()  # a no-op once written
            for uncommitted in written:
                uncommitted.rollback()  # an earlier commit of this call failed


def _answers(results: Sequence[StoreResult]) -> tuple[list[SinkResult], list[str]]:
    answers: list[SinkResult] = []
    refused: list[str] = []
    for result in results:
        if result.outcome is Outcome.REFUSED:
            reason = result.reason or "ingest.refused"
            refused.append(reason)
            answers.append(SinkResult(refused=reason))
        else:
            answers.append(ACCEPTED)
    return answers, refused

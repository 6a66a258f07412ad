"""`IngestSink`: the gateway's `MessageSink` over the ingest `MessageStore` (the database).

The store's batch insert is synchronous database work: it runs in the sink's own worker
threads, never on the event loop, in chunks of at most `ingest.store.MAX_BATCH`, one
transaction each. Each `store` call is one trip to a worker thread, which converts the
messages, checks and writes its chunks (`MessageStore.write_batch`) and commits them. The
store queue keeps several batches in the sink, and their writes run at once, each in its own
transaction on its own database connection: on PostgreSQL one batch's INSERT runs while
another's commit waits for the disk and a third is checked, on both cores. (Writing them one
after another kept the table's row ids in arrival order across batches, but made the one
INSERT at a time the ceiling of the whole data plane: about 60% of the wall time at 14k
msgs/s.) Within a batch the rows keep the order the gateway received them in; across batches
written at once only `received_at` does, which is what the queries order by. Two batches
holding the same report (a device's resend after a reconnect) cannot store it twice: the
second INSERT waits on the unique key for the first one's commit, then skips it
(duplicate). `store` returns only once every chunk of its call is committed; the store
queue still answers the batches, and so the devices, in the order they were submitted.
The store gives every message a final outcome (stored, duplicate, refused for a bad
payload): a refusal is returned with its reason code (the gateway tells the device) and
counted here by reason.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from devicetrust.ingest.records import InboundMessage, Outcome, StoreResult
from devicetrust.ingest.store import MAX_BATCH, MessageStore, WrittenBatch

from .sink import ACCEPTED, DeviceMessage, SinkResult

_THREADS = 4  # `store` calls at work at once; more wait in the executor's queue, in order


class IngestSink:
    def __init__(self, store: MessageStore) -> None:
        self._store = store
        self.refusals: Counter[str] = Counter()  # by the store's reason code
        self._threads = ThreadPoolExecutor(_THREADS, thread_name_prefix="gateway-ingest")
        weakref.finalize(self, self._threads.shutdown, wait=False)

    @property
    def refused(self) -> int:
        """Messages the store refused (bad payload, schema, unbound unit, ...)."""
        return sum(self.refusals.values())

    async def store(self, messages: Sequence[DeviceMessage]) -> list[SinkResult]:
        # Shielded: a thread that started finishes its transactions (committed, or rolled
        # back on error) even if the caller stops waiting.
        done = asyncio.get_running_loop().run_in_executor(
            self._threads, self._store_now, messages)
        results, refused = await asyncio.shield(done)
        for reason in refused:  # counted here, on the loop: the threads never share it
            self.refusals[reason] += 1
        return results

    def _store_now(self, messages: Sequence[DeviceMessage]) -> tuple[list[SinkResult], list[str]]:
        """In a worker thread: write every chunk, then commit them in order; the answer per
        message and the reasons of the refused ones. A failure stores none of the chunks
        not yet committed (the store queue fails the whole call: nothing is acknowledged)."""
        written: list[WrittenBatch] = []
        try:
            inbound = [InboundMessage(m.physical_id, m.kind, m.payload, m.received_at,
                                      message_id=m.message_id, content_type=m.content_type)
                       for m in messages]
            for start in range(0, len(inbound), MAX_BATCH):
                written.append(self._store.write_batch(inbound[start : start + MAX_BATCH]))
            results: list[StoreResult] = []
            while written:
                results.extend(written.pop(0).commit())
            return _answers(results)
        finally:
            for uncommitted in written:
                uncommitted.rollback()  # a write or an earlier commit of this call failed


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

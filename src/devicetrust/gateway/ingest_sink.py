"""`IngestSink`: the gateway's `MessageSink` over the ingest `MessageStore` (the database).

The store's batch insert is synchronous database work: it runs in a worker thread, never on
the event loop, in chunks of at most `ingest.store.MAX_BATCH`, one transaction each. The
store gives every message a final outcome (stored, duplicate, refused for a bad payload):
a refusal is returned with its reason code (the gateway tells the device) and counted here
by reason.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

from devicetrust.ingest.records import InboundMessage, Outcome, StoreResult
from devicetrust.ingest.store import MAX_BATCH, MessageStore

from .sink import ACCEPTED, DeviceMessage, SinkResult


class IngestSink:
    def __init__(self, store: MessageStore) -> None:
        self._store = store
        self.refusals: Counter[str] = Counter()  # by the store's reason code

    @property
    def refused(self) -> int:
        """Messages the store refused (bad payload, schema, unbound unit, ...)."""
        return sum(self.refusals.values())

    async def store(self, messages: Sequence[DeviceMessage]) -> list[SinkResult]:
        inbound = [InboundMessage(m.physical_id, m.kind, m.payload, m.received_at,
                                  message_id=m.message_id, content_type=m.content_type)
                   for m in messages]
        out: list[SinkResult] = []
        for start in range(0, len(inbound), MAX_BATCH):
            chunk = inbound[start : start + MAX_BATCH]
            results = await asyncio.to_thread(self._store_chunk, chunk)
            for result in results:
                if result.outcome is Outcome.REFUSED:
                    reason = result.reason or "ingest.refused"
                    self.refusals[reason] += 1
                    out.append(SinkResult(refused=reason))
                else:
                    out.append(ACCEPTED)
        return out

    def _store_chunk(self, chunk: list[InboundMessage]) -> list[StoreResult]:
        return self._store.store_batch(chunk)

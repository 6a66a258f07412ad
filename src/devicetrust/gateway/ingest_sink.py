"""`IngestSink`: the gateway's `MessageSink` over the ingest `MessageStore` (the database).

The store's batch insert is synchronous database work: it runs in a worker thread, never on
the event loop, in chunks of at most `ingest.store.MAX_BATCH`, one transaction each. The
store gives every message a final outcome (stored, duplicate, refused for a bad payload):
all of them are acknowledged, as the store documents; a refusal is counted here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from devicetrust.ingest.records import InboundMessage, Outcome, StoreResult
from devicetrust.ingest.store import MAX_BATCH, MessageStore

from .sink import DeviceMessage


class IngestSink:
    def __init__(self, store: MessageStore) -> None:
        self._store = store
        self.refused = 0  # messages the store refused (bad payload, unbound unit, ...)

    async def store(self, messages: Sequence[DeviceMessage]) -> None:
        inbound = [InboundMessage(m.physical_id, m.kind, m.payload, m.received_at,
                                  message_id=m.message_id) for m in messages]
        for start in range(0, len(inbound), MAX_BATCH):
            chunk = inbound[start : start + MAX_BATCH]
            results = await asyncio.to_thread(self._store_chunk, chunk)
            self.refused += sum(r.outcome is Outcome.REFUSED for r in results)

    def _store_chunk(self, chunk: list[InboundMessage]) -> list[StoreResult]:
        return self._store.store_batch(chunk)

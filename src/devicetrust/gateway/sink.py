"""What the gateway hands to storage: `DeviceMessage` values, written through a `MessageSink`.

The gateway acknowledges a QoS 1 PUBLISH only after `MessageSink.store` returned for the batch
holding it, so a sink must return only once the messages are durable (committed), and raise
otherwise. It returns a `SinkResult` per message: accepted (stored, or a duplicate), or
refused with the store's reason code (a malformed payload, a schema violation, ...), which
the gateway reports to the device (MQTT 5 PUBACK 0x99) and counts. It never decides where a
message is filed: diagnostics belong to the logical identity and telemetry to the physical
unit, and the message carries both identities as the credential proved them when the device
connected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from devicetrust.domain.ids import LogicalName, PhysicalId
from devicetrust.ingest.records import MessageKind

__all__ = ["ACCEPTED", "DeviceMessage", "MessageKind", "MessageSink", "SinkResult"]


@dataclass(frozen=True, slots=True)
class DeviceMessage:
    """One PUBLISH (or will message) a device was allowed to send.

    `message_id` is the device's own id for the message, the MQTT 5 user property `msg-id`
    when it set one, so a redelivery after a lost PUBACK is stored once; without it the
    store derives its idempotence key from the payload (`ingest.rules.message_key`)."""

    message_id: str | None
    kind: MessageKind
    physical_id: PhysicalId
    logical_name: LogicalName | None
    payload: bytes
    received_at: datetime
    content_type: str | None = None
    will: bool = False  # stored because the connection dropped abnormally


@dataclass(frozen=True, slots=True)
class SinkResult:
    """What became of one message: accepted (`refused` is None) or refused for good, with
    the store's reason code (e.g. `ingest.payload_malformed`, `ingest.schema_violation`)."""

    refused: str | None = None


ACCEPTED = SinkResult()


class MessageSink(Protocol):
    async def store(self, messages: Sequence[DeviceMessage]) -> Sequence[SinkResult]:
        """Store every message durably and say, in order, what became of each one; or
        raise (then none of them is acknowledged)."""
        ...

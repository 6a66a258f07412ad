"""What a device is told about a PUBLISH once the sink has answered for it. Pure, no I/O.

A message the sink accepted (stored, or a duplicate of one stored) is acknowledged with
Success. One the store refused for good is acknowledged too (resending it would only be
refused again), with the reason code that says why (MQTT 5.0 §3.4.2.1): 0x99 Payload format
invalid for a payload that is not a well-formed object of a supported encoding or breaks its
stream's schema, 0x87 Not authorized for a unit the store cannot file it under, 0x80
Unspecified error otherwise. The precise reason (`ingest.schema_violation`, ...) is counted
and logged, never sent: the device learns only the class of its fault.
"""

from __future__ import annotations

from collections.abc import Sequence

from .codec import ProtocolVersion, Publish, ReasonCode
from .metrics import GatewayCounters
from .sink import DeviceMessage, MessageKind, SinkResult

MESSAGE_ID_PROPERTY = "msg-id"  # the ingest's name for a device's own message id

# Store reason codes (`ingest.encodings.REASONS`, `ingest.schemas`) about the payload itself.
_PAYLOAD_PREFIXES = ("ingest.payload_", "ingest.schema_", "ingest.unsupported_content_type")
_UNIT_REASONS = frozenset({"ingest.unit_unknown", "ingest.unit_unbound"})
_KIND_NAMES = {kind: kind.value for kind in MessageKind}  # `.value` is slow on 3.11 enums


def device_message_id(publish: Publish) -> str | None:
    for name, value in publish.properties.user_properties:
        if name == MESSAGE_ID_PROPERTY:
            return value  # checked by the store (1-64 printable ASCII, else refused)
    return None


def puback_reason(result: SinkResult, version: ProtocolVersion) -> ReasonCode:
    """The PUBACK reason code for a stored (or refused) message. A 3.1.1 PUBACK has none:
    a refused message is acknowledged plainly there."""
    reason = result.refused
    if reason is None or version is not ProtocolVersion.V5:
        return ReasonCode.SUCCESS
    if reason.startswith(_PAYLOAD_PREFIXES):
        return ReasonCode.PAYLOAD_FORMAT_INVALID
    if reason in _UNIT_REASONS:
        return ReasonCode.NOT_AUTHORIZED
    return ReasonCode.UNSPECIFIED_ERROR


def count_outcomes(counters: GatewayCounters, messages: Sequence[DeviceMessage],
                   results: Sequence[SinkResult]) -> None:
    """Count what became of a batch's messages: stored by kind, refused by the store's reason
    (each counter touched once per batch, not once per message)."""
    accepted = [m.kind for m, r in zip(messages, results, strict=True) if r.refused is None]
    if len(accepted) < len(results):
        for result in results:
            if result.refused is not None:
                counters.messages_refused[result.refused] += 1
    for kind in set(accepted):
        counters.messages_in[_KIND_NAMES[kind]] += accepted.count(kind)

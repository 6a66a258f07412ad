"""Plain values of the message store: what a gateway hands in, what it gets back, what a
query returns. Building one never touches the database or the network, and none of them
knows MQTT: the embedded gateway and the Mosquitto ingest both speak to the store in these
terms.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devicetrust.domain.ids import LogicalName, PhysicalId


class MessageKind(enum.StrEnum):
    """A device's upstream streams: diagnostics belong to the logical identity (the job the
    device does), telemetry to the physical unit (the machine itself)."""

    DIAGNOSTICS = "diagnostics"
    TELEMETRY = "telemetry"


class Outcome(enum.StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # already stored (a redelivery): acknowledge, store nothing
    REFUSED = "refused"  # malformed, oversized, unknown unit, ...: acknowledge, count


class FeedbackStatus(enum.StrEnum):
    PENDING = "pending"  # queued, not yet accepted by the broker
    PUBLISHED = "published"  # the broker acknowledged it (QoS 1) for the holder's topic
    DELIVERED = "delivered"  # the device itself acknowledged it (PUBACK; embedded gateway)
    EXPIRED = "expired"  # its time to live passed before it could be published


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One report as the transport authenticated it: `physical_id` comes from the device's
    proven credential (certificate CN, token), never from the payload or client id.
    `message_id` is the device's own id for the report when it sends one (MQTT 5 user
    property `msg-id`); without it the payload's SHA-256 is the idempotence key.
    `content_type` names the payload's encoding (`ingest.encodings`)."""

    physical_id: PhysicalId
    kind: MessageKind
    payload: bytes
    received_at: datetime
    message_id: str | None = None
    content_type: str | None = None  # MQTT 5 Content Type: the payload's encoding (None: JSON)


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What the store did with one `InboundMessage` (same order as the batch)."""

    outcome: Outcome
    message_key: str
    logical_name: LogicalName | None = None
    reason: str | None = None  # an error code when refused, e.g. `ingest.payload_too_large`
    detail: str | None = None  # for the operator: e.g. the field of a schema violation

    @property
    def acknowledge(self) -> bool:
        """Every outcome is final: the transport may acknowledge the message (a refusal is
        a decision, retrying it would only refuse it again)."""
        return True


@dataclass(frozen=True, slots=True)
class StoredMessage:
    kind: MessageKind
    physical_id: PhysicalId
    logical_name: LogicalName | None  # the name the identity had when the message arrived
    message_key: str
    received_at: datetime
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "physical_id": self.physical_id,
            "logical_name": self.logical_name,
            "message_key": self.message_key,
            "received_at": self.received_at.isoformat(),
            "payload": self.payload,
        }


@dataclass(frozen=True, slots=True)
class Feedback:
    feedback_id: str
    logical_name: LogicalName
    payload: dict[str, Any]
    status: FeedbackStatus
    created_at: datetime
    expires_at: datetime
    physical_id: PhysicalId | None = None  # where it was routed (set when published)
    published_at: datetime | None = None
    delivered_at: datetime | None = None  # the unit acknowledged it (embedded gateway)

    def to_json(self) -> dict[str, Any]:
        return {
            "feedback_id": self.feedback_id,
            "logical_name": self.logical_name,
            "payload": self.payload,
            "status": self.status.value,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "physical_id": self.physical_id,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
        }

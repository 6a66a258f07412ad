"""Tables of the data plane (`devicetrust.ingest`, `devicetrust.gateway`;
migrations 0006, 0007, 0010). Imported by `store.models`
so that `Base.metadata` is complete.

Invariants the database enforces: a device message is stored once per (unit, stream, message
key) (`uq_device_messages_key`), so a QoS 1 redelivery, a retry after a lost PUBACK or two
ingest workers racing on the same message can never store it twice. Diagnostics carry the
logical identity (its stable row id, and the name it had when the message arrived) that the
sending unit held; telemetry carries the unit and, for reference, the logical identity it
held then.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from devicetrust.store.models import Base

__all__ = ["Base", "DeviceMessageRow", "FeedbackRow", "GatewaySessionRow"]

_BigIntId = BigInteger().with_variant(Integer(), "sqlite")
# The predicates of the partial indexes; a query names its stream with the same literal
# (`ingest.store`), never a bound parameter, or the planner cannot use them.
DIAGNOSTICS_ONLY = "kind = 'diagnostics'"
TELEMETRY_ONLY = "kind = 'telemetry'"


class DeviceMessageRow(Base):
    """One diagnostics or telemetry report a device sent."""

    __tablename__ = "device_messages"
    __table_args__ = (
        UniqueConstraint("physical_id", "kind", "message_key", name="uq_device_messages_key"),
        # Partial (migration 0010): each stream's index holds only that stream's rows.
        Index("ix_device_messages_diagnostics", "logical_id", "received_at",
              postgresql_where=text(DIAGNOSTICS_ONLY), sqlite_where=text(DIAGNOSTICS_ONLY)),
        Index("ix_device_messages_telemetry", "physical_id", "received_at",
              postgresql_where=text(TELEMETRY_ONLY), sqlite_where=text(TELEMETRY_ONLY)),
    )

    id: Mapped[int] = mapped_column(_BigIntId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # diagnostics | telemetry
    # No foreign keys (migration 0010): the store files a report only for a unit it found
    # in the same snapshot, and identities are never deleted.
    physical_id: Mapped[str] = mapped_column(String(36))
    logical_id: Mapped[str | None] = mapped_column(String(36))
    logical_name: Mapped[str | None] = mapped_column(String(128))  # the name at receive time
    # The device's message id, or the SHA-256 of the payload when it sent none.
    message_key: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime]
    stored_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]]
    payload_bytes: Mapped[int] = mapped_column(Integer)


class FeedbackRow(Base):
    """A message from the backend to the device that holds a logical identity."""

    __tablename__ = "feedback_messages"
    __table_args__ = (
        Index("ix_feedback_status_created", "status", "created_at"),
        Index("ix_feedback_logical_created", "logical_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    logical_id: Mapped[str] = mapped_column(ForeignKey("logical_identities.id"))
    logical_name: Mapped[str] = mapped_column(String(128))  # as addressed
    # The unit it was routed to: the holder when it was published (None while pending).
    physical_id: Mapped[str | None] = mapped_column(ForeignKey("physical_identities.id"))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))  # pending|published|delivered|expired
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]
    published_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]  # the unit's PUBACK arrived (migration 0007)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class GatewaySessionRow(Base):
    """A persistent MQTT session of the embedded gateway (MQTT 5 Session Expiry > 0, 3.1.1
    clean session 0), kept so that it survives a restart of `serve` (migration 0007). The
    feedback it held is not copied here: it is the unit's `published`, undelivered feedback."""

    __tablename__ = "gateway_sessions"

    physical_id: Mapped[str] = mapped_column(
        ForeignKey("physical_identities.id"), primary_key=True
    )
    expiry_seconds: Mapped[int] = mapped_column(Integer)
    subscription_qos: Mapped[int | None] = mapped_column(Integer)  # None: not subscribed
    ends_at: Mapped[datetime | None]  # None: the device was connected at the last write
    updated_at: Mapped[datetime]

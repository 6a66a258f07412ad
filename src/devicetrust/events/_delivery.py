"""Delivery records and rules: states, the retry schedule, the event envelope sent on the wire.

Pure values and functions; no database, no network, no clock of its own.
"""

from __future__ import annotations

import enum
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# Longest `last_error` kept: enough to diagnose, too short to store a response body.
MAX_ERROR_LENGTH = 300
# Each retry waits its backoff plus up to this fraction more, so receivers that failed
# together are not retried in lock-step.
JITTER_FRACTION = 0.2


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Delivery:
    delivery_id: int
    webhook_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.delivery_id,
            "webhook_id": self.webhook_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "status": self.status.value,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at.isoformat(),
            "last_error": self.last_error,
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
        }


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one dispatcher pass did."""

    fanned_out: int = 0  # deliveries created from new events
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0  # failed, another attempt scheduled
    dead: int = 0  # failed for the last time

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(
            self.fanned_out + other.fanned_out,
            self.attempted + other.attempted,
            self.delivered + other.delivered,
            self.retrying + other.retrying,
            self.dead + other.dead,
        )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 8
    base_backoff: timedelta = timedelta(seconds=2)
    max_backoff: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts is at least 1")
        if self.base_backoff <= timedelta(0) or self.max_backoff < self.base_backoff:
            raise ValueError("0 < base_backoff <= max_backoff")

    def backoff(self, attempts: int) -> timedelta:
        """Wait after the `attempts`-th failure, before jitter: base * 2**(attempts-1), capped."""
        factor = 1 << max(attempts - 1, 0)
        # Compare as a ratio: base * factor itself would overflow timedelta for many attempts.
        if factor >= self.max_backoff / self.base_backoff:
            return self.max_backoff
        return self.base_backoff * factor

    def next_delay(self, attempts: int, rng: random.Random) -> timedelta:
        base = self.backoff(attempts)
        return base + base * rng.uniform(0.0, JITTER_FRACTION)

    def is_last(self, attempts: int) -> bool:
        return attempts >= self.max_attempts


def envelope_body(
    *,
    event_id: str,
    event_type: str,
    occurred_at: datetime,
    subject: str,
    payload: Mapping[str, Any],
) -> bytes:
    """The JSON body of a webhook request: compact, keys sorted, UTF-8."""
    body = {
        "id": event_id,
        "type": event_type,
        "occurred_at": occurred_at.isoformat(),
        "subject": subject,
        "data": dict(payload),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def short_error(text: str) -> str:
    """One line, bounded length: what `last_error` stores."""
    flat = " ".join(text.split())
    if len(flat) > MAX_ERROR_LENGTH:
        return flat[: MAX_ERROR_LENGTH - 3] + "..."
    return flat

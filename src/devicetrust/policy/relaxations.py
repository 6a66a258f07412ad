"""Relaxations: an explicit, reasoned, expiring exception to the secure baseline.

A relaxation is active from its creation until `expires_at` or until it is revoked, whichever
comes first; that is decided here, at read time, against the time the caller passes in, so a
lapsed relaxation stops applying at its expiry with no job to run. Pure: no database, no clock.

Never is a relaxation without a reason or an expiry, nor one longer than `MAX_RELAXATION`
(`check_request` refuses both before anything is written).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from devicetrust.policy import fields
from devicetrust.policy.durations import format_duration
from devicetrust.policy.errors import InvalidPolicy
from devicetrust.policy.model import PolicyField
from devicetrust.policy.scopes import PolicyScope

MAX_RELAXATION = timedelta(days=90)
MIN_REASON = 8
MAX_REASON = 1000


class RelaxationStatus(enum.StrEnum):
    ACTIVE = "active"
    LAPSED = "lapsed"  # its expiry has passed
    REVOKED = "revoked"  # ended early by an operator


@dataclass(frozen=True, slots=True)
class Relaxation:
    relaxation_id: str
    rule: PolicyField
    value: Any  # typed as `fields.parse_value(rule, ...)` returns it
    scope: PolicyScope
    reason: str
    created_at: datetime
    created_by: str
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None

    def status(self, now: datetime) -> RelaxationStatus:
        if self.revoked_at is not None and self.revoked_at <= now:
            return RelaxationStatus.REVOKED
        if now >= self.expires_at:
            return RelaxationStatus.LAPSED
        return RelaxationStatus.ACTIVE

    def active_at(self, now: datetime) -> bool:
        return self.created_at <= now and self.status(now) is RelaxationStatus.ACTIVE

    def ended_at(self) -> datetime:
        """When it stopped (or will stop) applying."""
        return min(self.expires_at, self.revoked_at) if self.revoked_at else self.expires_at

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "relaxation_id": self.relaxation_id,
            "rule": self.rule.value,
            "value": fields.value_json(self.rule, self.value),
            "scope": self.scope.key,
            "reason": self.reason,
            "status": self.status(now).value,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "expires_at": self.expires_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revoked_by": self.revoked_by,
            "revoke_reason": self.revoke_reason,
        }


def clean_reason(reason: object, *, what: str = "reason") -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidPolicy(
            "policy.reason_required", f"a {what} is required: say why, for the audit log"
        )
    text = reason.strip()
    if "\x00" in text or len(text) > MAX_REASON:
        raise InvalidPolicy(
            "policy.invalid_reason", f"a {what} has at most {MAX_REASON} characters"
        )
    if len(text) < MIN_REASON:
        raise InvalidPolicy(
            "policy.reason_required",
            f"a {what} of at least {MIN_REASON} characters is required: say why",
        )
    return text


def check_expiry(expires_at: datetime, now: datetime, maximum: timedelta = MAX_RELAXATION) -> None:
    if expires_at <= now:
        raise InvalidPolicy("policy.expiry_in_past", "the expiry must be in the future")
    if expires_at - now > maximum:
        raise InvalidPolicy(
            "policy.expiry_too_far",
            f"a relaxation lasts at most {format_duration(maximum)}; relax again when it lapses",
            maximum_seconds=int(maximum.total_seconds()),
        )


def newest_first(relaxations: list[Relaxation]) -> list[Relaxation]:
    return sorted(relaxations, key=lambda r: (r.created_at, r.relaxation_id), reverse=True)

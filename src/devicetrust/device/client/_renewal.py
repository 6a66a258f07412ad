"""When to renew the operational certificate: at a fraction of its lifetime (2/3 by
default, as cert-manager's `renewBefore` default of 1/3 remaining), pure over times."""

from __future__ import annotations

from datetime import datetime, timedelta

DEFAULT_RENEW_AT = 2 / 3


def renewal_due_at(not_before: datetime, not_after: datetime, fraction: float) -> datetime:
    """The instant renewal is due: `not_before + fraction * lifetime`."""
    if not 0.0 < fraction < 1.0:
        raise ValueError("the renewal fraction is strictly between 0 and 1")
    return not_before + timedelta(seconds=(not_after - not_before).total_seconds() * fraction)


def seconds_until_renewal(
    now: datetime, not_before: datetime, not_after: datetime, fraction: float
) -> float:
    """Seconds from `now` until renewal is due (0 when due or past)."""
    return max(0.0, (renewal_due_at(not_before, not_after, fraction) - now).total_seconds())

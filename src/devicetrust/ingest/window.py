"""Time windows and lifetimes of the data plane as operators type them.

    window("1h", None, now)            # (now - 1 h, None): the last hour
    window("2026-11-25T08:00Z", "2026-11-25T09:00+00:00", now)
    lifetime("1h")                     # a feedback message's time to live

A bound is an ISO 8601 time with a timezone, or a duration back from `now` (`90m`, `1h`,
`2d`, `1h30m`, `PT6H`, or plain seconds). Pure: the current time is passed in. Never accepts
a naive time (its zone would be a guess) nor a window that ends before it starts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from devicetrust.domain.errors import InvalidInput
from devicetrust.policy import parse_duration
from devicetrust.policy.errors import InvalidPolicy

_HINT = "an ISO 8601 time with a timezone (2026-11-25T08:00Z) or a duration (1h, 30m, 2d)"


def time_bound(text: str, now: datetime, *, what: str = "since") -> datetime:
    """One bound: an aware ISO 8601 time, or `now` minus a duration."""
    value = text.strip()
    if not value or len(value) > 64:
        raise InvalidInput("ingest.bad_time", f"{what} is {_HINT}")
    try:
        return now - parse_duration(value, what=what)
    except InvalidPolicy:
        pass  # not a duration: a time, then
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(
            "ingest.bad_time", f"{what} is {_HINT}, got {value[:40]!r}"
        ) from exc
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput("ingest.bad_time", f"{what} needs a timezone (Z or +01:00)")
    return moment


def window(
    since: str | None, until: str | None, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """`[since, until)` of a query; either end may be open."""
    start = time_bound(since, now, what="since") if since is not None else None
    end = time_bound(until, now, what="until") if until is not None else None
    if start is not None and end is not None and start >= end:
        raise InvalidInput("ingest.bad_window", "since is before until")
    return start, end


def lifetime(value: str | int) -> timedelta:
    """A time to live: a duration such as `1h`, `PT30M`, or seconds."""
    try:
        return parse_duration(value, what="ttl")
    except InvalidPolicy as exc:
        raise InvalidInput("ingest.bad_ttl", exc.message) from exc

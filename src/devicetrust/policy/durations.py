"""Durations and expiry times as operators type them: `90d`, `12h`, `1h30m`, `45s`, `2w`,
ISO 8601 durations (`P7D`, `PT12H`), or plain seconds; an expiry is a duration from now or
an ISO 8601 time with a timezone.

Pure: the current time is passed in. Never accepts a naive time (whose zone would be a
guess) nor a negative or zero duration.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from devicetrust.policy.errors import InvalidPolicy

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_COMPACT = re.compile(r"^(?:\d{1,9}[wdhms])+$")
_PART = re.compile(r"(\d{1,9})([wdhms])")
_ISO = re.compile(
    r"^P(?:(?P<w>\d{1,9})W)?(?:(?P<d>\d{1,9})D)?"
    r"(?:T(?:(?P<h>\d{1,9})H)?(?:(?P<m>\d{1,9})M)?(?:(?P<s>\d{1,9})S)?)?$"
)
MAX_DURATION = timedelta(days=3650)


def parse_duration(value: object, *, what: str = "duration", allow_zero: bool = False) -> timedelta:
    """A positive (or, with `allow_zero`, zero) duration from text (`90d`, `PT12H`,
    `3600`) or integer seconds."""
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        seconds = _seconds_of(value.strip().lower(), what)
    else:
        raise _bad(what, value)
    if seconds < (0 if allow_zero else 1) or seconds > MAX_DURATION.total_seconds():
        raise InvalidPolicy(
            "policy.invalid_duration",
            f"a {what} is {'not negative' if allow_zero else 'positive'} and at most "
            f"{MAX_DURATION.days} days",
        )
    return timedelta(seconds=seconds)


def _seconds_of(text: str, what: str) -> int:
    if text.isdigit() and len(text) <= 12:
        return int(text)
    if _COMPACT.match(text):
        return sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(text))
    match = _ISO.match(text.upper())
    if match and text.upper() not in ("P", "PT") and not text.upper().endswith("T"):
        return sum(int(n) * _UNITS[unit] for unit, n in match.groupdict().items() if n)
    raise _bad(what, text)


def _bad(what: str, value: object) -> InvalidPolicy:
    return InvalidPolicy(
        "policy.invalid_duration",
        f"a {what} is like 90d, 12h, 1h30m, 45s, PT12H or a number of seconds; "
        f"got {str(value)[:40]!r}",
    )


def parse_expiry(value: object, now: datetime) -> datetime:
    """An expiry: an aware `datetime`, an ISO 8601 time with a timezone, or a duration
    from `now`."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, timedelta):
        return now + parse_duration(value, what="expiry duration")
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return now + parse_duration(text, what="expiry")
    else:
        raise InvalidPolicy(
            "policy.expiry_required",
            "an expiry is required: an ISO 8601 time with a timezone or a duration such as 7d",
        )
    if moment.tzinfo is None:
        raise InvalidPolicy(
            "policy.invalid_expiry", "an expiry time needs a timezone (e.g. ...Z or +00:00)"
        )
    return moment


def format_duration(value: timedelta) -> str:
    """The compact form (`1d2h`, `90d`, `5m`) for people."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    parts: list[str] = []
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)

"""Time bounds and lifetimes as operators type them (pure: the time is passed in)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from devicetrust.domain.errors import InvalidInput
from devicetrust.ingest.window import lifetime, time_bound, window

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1h", NOW - timedelta(hours=1)),
        ("90m", NOW - timedelta(minutes=90)),
        ("1h30m", NOW - timedelta(minutes=90)),
        ("2d", NOW - timedelta(days=2)),
        ("PT6H", NOW - timedelta(hours=6)),
        ("3600", NOW - timedelta(hours=1)),
        (" 1h ", NOW - timedelta(hours=1)),
        ("2026-11-25T07:00Z", datetime(2026, 11, 25, 7, 0, tzinfo=UTC)),
        ("2026-11-25T07:00:00+00:00", datetime(2026, 11, 25, 7, 0, tzinfo=UTC)),
        (
            "2026-11-25T08:30+01:00",
            datetime(2026, 11, 25, 8, 30, tzinfo=timezone(timedelta(hours=1))),
        ),
    ],
)
def test_a_bound_is_a_time_or_a_duration_back_from_now(text: str, expected: datetime) -> None:
    assert time_bound(text, NOW) == expected


@pytest.mark.parametrize(
    "text",
    ["", "  ", "yesterday", "1y", "-1h", "0", "2026-11-25T07:00", "2026-13-01T00:00Z",
     "1h" * 40, "3651d"],
)
def test_a_bad_bound_is_refused_with_a_code(text: str) -> None:
    with pytest.raises(InvalidInput) as err:
        time_bound(text, NOW)
    assert err.value.code == "ingest.bad_time"


def test_a_window_is_open_or_ordered() -> None:
    assert window(None, None, NOW) == (None, None)
    assert window("2h", "1h", NOW) == (NOW - timedelta(hours=2), NOW - timedelta(hours=1))
    for since, until in (("1h", "2h"), ("1h", "1h")):
        with pytest.raises(InvalidInput) as err:
            window(since, until, NOW)
        assert err.value.code == "ingest.bad_window"


def test_lifetime() -> None:
    assert lifetime("1h") == timedelta(hours=1)
    assert lifetime(90) == timedelta(seconds=90)
    for bad in ("soon", 0, -5, "0s"):
        with pytest.raises(InvalidInput) as err:
            lifetime(bad)
        assert err.value.code == "ingest.bad_ttl"

"""A small time-bounded cache of what token authentication reads from the database (a key
row and its unit's standing), so a busy entry point is not one query per connection.
Certificate authentication does not use it (`mtls_auth` reads status and standing each time).

Off by default (`ttl` zero: every authentication reads the database). With a TTL, a change
made elsewhere (another process suspends a unit, revokes a key) is seen at most `ttl` later;
changes made through this process's `DeviceAuthService` clear the cache at once. Negative
results are never cached (a key registered a moment ago works at once). The clock is the
service's `Clock`; entries hold no clear secret (token keys stay sealed in them).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from devicetrust.deviceauth.errors import InvalidLimits
from devicetrust.domain.clock import Clock

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")

MAX_ENTRIES = 100_000
MAX_TTL = timedelta(minutes=1)


class TtlCache(Generic[_K, _V]):
    def __init__(self, clock: Clock, ttl: timedelta) -> None:
        if not timedelta(0) <= ttl <= MAX_TTL:
            raise InvalidLimits(f"a cache TTL is 0 to {MAX_TTL}")
        self._clock = clock
        self._ttl = ttl
        self._entries: dict[_K, tuple[datetime, _V]] = {}

    def get(self, key: _K, load: Callable[[], _V | None]) -> _V | None:
        if not self._ttl:
            return load()
        now = self._clock.now()
        found = self._entries.get(key)
        if found is not None and now < found[0]:
            return found[1]
        value = load()
        if value is not None:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (now + self._ttl, value)
        return value

    def clear(self) -> None:
        self._entries.clear()

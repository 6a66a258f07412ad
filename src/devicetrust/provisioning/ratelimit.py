"""Rate limiting of failed provisioning attempts, per source address and per physical id.

A token bucket per key, held in memory: each failure takes a token, tokens come back at
`refill_per_minute`, and while a key's bucket is empty its attempts are refused before any
work (`provisioning.rate_limited`, with the seconds until a token is back). Successes take
nothing, so a device that proves itself is never slowed down.

In memory on purpose: a failed attempt must change nothing in the database, and a limiter
per server process bounds a guessing attacker just as well (N processes allow N times the
rate). At most `max_keys` buckets are kept; when full, buckets that have refilled are
dropped first, then the oldest.

Never decides whether an attempt is genuine (only how often failures may repeat) and never
sees a secret.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime

from devicetrust.domain.clock import Clock
from devicetrust.provisioning.errors import RateLimited


class FailureLimiter:
    def __init__(
        self,
        clock: Clock,
        *,
        burst: int = 10,
        refill_per_minute: float = 10.0,
        max_keys: int = 100_000,
    ) -> None:
        if burst < 1 or refill_per_minute <= 0 or max_keys < 1:
            raise ValueError("burst >= 1, refill_per_minute > 0, max_keys >= 1")
        self._clock = clock
        self._burst = float(burst)
        self._rate = refill_per_minute / 60.0  # tokens per second
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, keys: Sequence[str]) -> None:
        """Refuse when any key's bucket is empty."""
        now = self._clock.now()
        with self._lock:
            for key in keys:
                tokens = self._tokens(key, now)
                if tokens < 1.0:
                    wait = math.ceil((1.0 - tokens) / self._rate)
                    raise RateLimited(
                        "too many failed provisioning attempts; retry later",
                        retry_after=max(1, wait),
                        key=key.split(":", 1)[0],
                    )

    def failed(self, keys: Sequence[str]) -> None:
        now = self._clock.now()
        with self._lock:
            for key in keys:
                self._buckets[key] = (max(0.0, self._tokens(key, now) - 1.0), now)
                self._buckets.move_to_end(key)
            self._evict(now)

    def _tokens(self, key: str, now: datetime) -> float:
        found = self._buckets.get(key)
        if found is None:
            return self._burst
        tokens, at = found
        elapsed = max(0.0, (now - at).total_seconds())
        return min(self._burst, tokens + elapsed * self._rate)

    def _evict(self, now: datetime) -> None:
        if len(self._buckets) <= self._max_keys:
            return
        for key in [k for k in self._buckets if self._tokens(k, now) >= self._burst]:
            del self._buckets[key]
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)


def attempt_keys(source: str, claimed: str) -> list[str]:
    """The buckets an attempt spends from: its source address and the unit it claims."""
    return [f"source:{source[:64]}", f"device:{claimed}"]

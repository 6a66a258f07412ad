"""The per-unit message-rate quota: one token bucket per physical id.

    quota = MessageQuota(rate=100.0, burst=1000)
    if not quota.take(physical_id, loop.time()):   # monotonic seconds, from the caller
        ...                                          # 0x96 Message rate too high

A unit may publish `burst` messages at once and `rate` per second on average. The bucket
belongs to the unit, not to its connection: reconnecting does not refill it. Only the
buckets of units that are below full are worth keeping (a full bucket is the same as a new
one), so the table is pruned of full buckets when it grows past `max_units`; it never holds
more than the units that published in the last `burst / rate` seconds plus that bound.

Pure bookkeeping: never reads a clock itself (the caller passes monotonic time) and does no
I/O. Wills are not counted (they are the server's to store, not the device's to send).
"""

from __future__ import annotations

from dataclasses import dataclass

from devicetrust.domain.ids import PhysicalId


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float  # monotonic seconds of the last refill


class MessageQuota:
    def __init__(self, *, rate: float, burst: int, max_units: int = 100_000) -> None:
        if not rate > 0:
            raise ValueError("rate must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.burst = burst
        self._max_units = max_units
        self._buckets: dict[PhysicalId, _Bucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, physical_id: PhysicalId, now: float) -> bool:
        """Spend one message of `physical_id`'s quota at monotonic time `now`; False (and
        nothing spent) when its bucket is empty."""
        bucket = self._buckets.get(physical_id)
        if bucket is None:
            if len(self._buckets) >= self._max_units:
                self._prune(now)
            bucket = self._buckets[physical_id] = _Bucket(float(self.burst), now)
        else:
            elapsed = max(0.0, now - bucket.at)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.at = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def _prune(self, now: float) -> None:
        refill = self.burst / self.rate
        for unit in [u for u, b in self._buckets.items() if now - b.at >= refill]:
            del self._buckets[unit]

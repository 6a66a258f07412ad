"""The fleet's counters: what happened, counted as it happens (thread-safe), and a frozen
`FleetSummary` snapshot for the live line, `--json` and the benchmarks.

Acknowledgement latency is the time from `publish_*` to the moment the fleet saw the message
leave the device's offline buffer (its PUBACK), sampled at the fleet's tick (`resolution_ms`).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class FleetSummary:
    devices: int
    provisioned: int
    connected: int
    published: int
    acked: int
    pending: int
    rejected: int
    feedback_received: int
    feedback_applied: int
    reconnects: int
    elapsed_s: float
    provisioning_s: float
    connecting_s: float
    ack_latency_p50_ms: float | None
    ack_latency_p99_ms: float | None
    resolution_ms: float
    refusals: dict[str, int] = field(default_factory=dict)
    faults_injected: dict[str, int] = field(default_factory=dict)
    faults_as_expected: dict[str, int] = field(default_factory=dict)
    faults_unexpected: dict[str, int] = field(default_factory=dict)

    @property
    def acked_per_second(self) -> float:
        return self.acked / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def provisioned_per_second(self) -> float:
        return self.provisioned / self.provisioning_s if self.provisioning_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["acked_per_second"] = round(self.acked_per_second, 1)
        data["provisioned_per_second"] = round(self.provisioned_per_second, 1)
        return data

    def line(self) -> str:
        """The one-line live summary."""
        latency = ("-" if self.ack_latency_p50_ms is None else
                   f"{self.ack_latency_p50_ms:.0f}/{self.ack_latency_p99_ms:.0f} ms")
        faults = sum(self.faults_injected.values())
        return (f"{self.connected}/{self.devices} connected | sent {self.published} "
                f"acked {self.acked} pending {self.pending} | {self.acked_per_second:.0f} msg/s"
                f" | ack p50/p99 {latency} | feedback {self.feedback_received} | reconnects "
                f"{self.reconnects} | faults {faults} | refusals {sum(self.refusals.values())}")


class FleetCounters:
    """Counters one fleet's threads add to; `summary()` takes a consistent snapshot."""

    def __init__(self, devices: int) -> None:
        self._lock = threading.Lock()
        self.devices = devices
        self._counts: Counter[str] = Counter()
        self._refusals: Counter[str] = Counter()
        self._injected: Counter[str] = Counter()
        self._expected: Counter[str] = Counter()
        self._unexpected: Counter[str] = Counter()
        self._latencies: list[float] = []

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def refused(self, reason: str) -> None:
        with self._lock:
            self._refusals[reason] += 1

    def fault(self, kind: str, *, as_expected: bool) -> None:
        """One injected fault and whether its outcome was the expected one."""
        with self._lock:
            self._injected[kind] += 1
            (self._expected if as_expected else self._unexpected)[kind] += 1

    def latencies(self, seconds: list[float]) -> None:
        with self._lock:
            self._latencies.extend(seconds)

    def latency_samples(self) -> list[float]:
        with self._lock:
            return list(self._latencies)

    def summary(self, *, connected: int, pending: int, rejected: int, elapsed: float,
                resolution: float) -> FleetSummary:
        with self._lock:
            c = self._counts
            ordered = sorted(self._latencies)
            return FleetSummary(
                devices=self.devices, provisioned=c["provisioned"], connected=connected,
                published=c["published"], acked=c["acked"], pending=pending, rejected=rejected,
                feedback_received=c["feedback_received"], feedback_applied=c["feedback_applied"],
                reconnects=c["reconnects"], elapsed_s=round(elapsed, 3),
                provisioning_s=round(c["provisioning_ms"] / 1000, 3),
                connecting_s=round(c["connecting_ms"] / 1000, 3),
                ack_latency_p50_ms=_percentile_ms(ordered, 0.50),
                ack_latency_p99_ms=_percentile_ms(ordered, 0.99),
                resolution_ms=round(resolution * 1000, 1),
                refusals=dict(self._refusals), faults_injected=dict(self._injected),
                faults_as_expected=dict(self._expected),
                faults_unexpected=dict(self._unexpected),
            )


def merge(parts: list[FleetSummary], latencies: list[float] | None = None) -> FleetSummary:
    """One summary of several fleets run side by side (the shards of one run): counts add
    up, durations are the longest; the percentiles are exact from `latencies` (all the
    samples), else the median shard's p50 and the worst p99 (live estimates)."""
    def total(name: str) -> int:
        return sum(int(getattr(part, name)) for part in parts)

    def longest(name: str) -> float:
        return max((float(getattr(part, name)) for part in parts), default=0.0)

    def added(name: str) -> dict[str, int]:
        out: Counter[str] = Counter()
        for part in parts:
            out.update(getattr(part, name))
        return dict(out)

    if latencies is not None:
        ordered = sorted(latencies)
        p50, p99 = _percentile_ms(ordered, 0.50), _percentile_ms(ordered, 0.99)
    else:
        p50s = sorted(p.ack_latency_p50_ms for p in parts if p.ack_latency_p50_ms is not None)
        p99s = [p.ack_latency_p99_ms for p in parts if p.ack_latency_p99_ms is not None]
        p50 = p50s[len(p50s) // 2] if p50s else None
        p99 = max(p99s) if p99s else None
    return FleetSummary(
        devices=total("devices"), provisioned=total("provisioned"),
        connected=total("connected"), published=total("published"), acked=total("acked"),
        pending=total("pending"), rejected=total("rejected"),
        feedback_received=total("feedback_received"),
        feedback_applied=total("feedback_applied"), reconnects=total("reconnects"),
        elapsed_s=longest("elapsed_s"), provisioning_s=longest("provisioning_s"),
        connecting_s=longest("connecting_s"), ack_latency_p50_ms=p50, ack_latency_p99_ms=p99,
        resolution_ms=longest("resolution_ms"), refusals=added("refusals"),
        faults_injected=added("faults_injected"), faults_as_expected=added("faults_as_expected"),
        faults_unexpected=added("faults_unexpected"),
    )


def _percentile_ms(ordered: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of sorted seconds, in milliseconds."""
    if not ordered:
        return None
    rank = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return round(ordered[rank] * 1000, 1)

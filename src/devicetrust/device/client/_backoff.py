"""Reconnection delays: exponential backoff with full jitter (AWS Architecture Blog,
"Exponential Backoff And Jitter"), so a fleet that lost its gateway does not come back in
lock-step. Pure: the random source is passed in."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    """`next_delay()` is uniform in [0, min(cap, base * 2**attempt)], never below `floor`."""

    base: float = 0.5
    cap: float = 60.0
    floor: float = 0.05
    rng: random.Random | None = None
    attempt: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * (2 ** min(self.attempt, 32)))
        self.attempt += 1
        draw = (self.rng or _SYSTEM).uniform(0.0, ceiling)
        return max(self.floor, draw)

    def reset(self) -> None:
        self.attempt = 0


_SYSTEM = random.SystemRandom()

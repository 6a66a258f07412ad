"""The hypothesis-driven fuzz run of a target (tests/fuzz/targets.py): inputs are the
target's corpus, mutations of it (tests/security/mutations.py) and random bytes. The test
suite runs it briefly and derandomized; scripts/fuzz.py runs it for a time when atheris is
not installed."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.fuzz.targets import Target, seeds
from tests.security.mutations import mutated


def inputs(target: Target) -> st.SearchStrategy[bytes]:
    pool = seeds(target)
    return st.one_of(
        st.sampled_from(pool).flatmap(mutated),
        st.sampled_from(pool),
        st.binary(max_size=target.max_len),
    )


def run(target: Target, examples: int, *, at: int | None = None) -> int:
    """Try `examples` inputs (derandomized, or seeded with `at`); returns how many ran. A
    finding propagates, shrunk, as hypothesis' failure."""
    executions = 0

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=at is None,
        suppress_health_check=list(HealthCheck),
    )
    @given(inputs(target))
    def check(data: bytes) -> None:
        nonlocal executions
        executions += 1
        target.run(data)

    (seed(at)(check) if at is not None else check)()
    return executions


def run_for(target: Target, seconds: float, batch: int = 500) -> int:
    """Seeded batches until `seconds` have passed (0: until interrupted)."""
    end = time.monotonic() + seconds
    executions, batch_number = 0, 0
    while seconds <= 0 or time.monotonic() < end:
        batch_number += 1
        executions += run(target, batch, at=batch_number)
    return executions

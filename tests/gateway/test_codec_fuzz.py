"""A short fuzz run in the default suite: replay the kept corpus, then a few hundred seeded
mutations of it, through the same target as the long atheris run (scripts/fuzz_mqtt.py)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from .fuzz_target import one_input

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.bin"))
INTERESTING = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x23, 0x2B, 0x2F, 0xC0, 0xED, 0x26, 0x0B]


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(6)
        at = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[min(at, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and out:
            out[min(at, len(out) - 1)] = rng.choice(INTERESTING)
        elif op == 2:
            out[at:at] = rng.randbytes(rng.randint(1, 4))
        elif op == 3:
            del out[at : at + rng.randint(1, 8)]
        elif op == 4:  # splice in a piece of another input
            other = rng.choice(pool)
            start = rng.randrange(len(other) + 1)
            out[at:at] = other[start : start + rng.randint(1, 32)]
        else:  # duplicate a run: repeated packets, lengths that no longer fit
            piece = out[at : at + rng.randint(1, 16)]
            out[at:at] = piece * rng.randint(1, 3)
    return bytes(out)


def test_the_corpus_is_kept() -> None:
    assert len(CORPUS) >= 40
    assert all(p.stat().st_size <= 4096 for p in CORPUS)


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_input(path: Path) -> None:
    one_input(path.read_bytes())


def test_seeded_mutations_of_the_corpus() -> None:
    rng = random.Random(20261125)
    pool = [p.read_bytes() for p in CORPUS]
    for _ in range(600):
        one_input(mutate(rng, rng.choice(pool), pool))

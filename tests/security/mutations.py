"""Hypothesis strategy for damaged DER: a valid encoding with a few byte edits."""

from __future__ import annotations

from hypothesis import strategies as st


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """`valid` with one to three edits: byte flips, truncations, insertions, deletions."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data) - 1))
        edit = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        if edit == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif edit == "truncate":
            del data[at:]
        elif edit == "insert":
            data.insert(at, draw(st.integers(0, 255)))
        else:
            del data[at]
        if not data:
            break
    return bytes(data)

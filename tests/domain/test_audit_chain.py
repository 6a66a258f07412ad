"""The pure hash-chain rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from devicetrust.domain.audit import GENESIS_HASH, AuditRecord, entry_hash, first_break

T0 = datetime(2026, 11, 25, tzinfo=UTC)


def _chain(n: int) -> list[AuditRecord]:
    out: list[AuditRecord] = []
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        at = T0 + timedelta(seconds=seq)
        details = {"n": seq}
        digest = entry_hash(prev, seq, at, "op", "device.bound", f"s{seq}", details)
        out.append(AuditRecord(seq, at, "op", "device.bound", f"s{seq}", details, prev, digest))
        prev = digest
    return out


def test_intact_chain_verifies() -> None:
    chain = _chain(5)
    assert first_break(chain, head_seq=5, head_hash=chain[-1].hash) is None


def test_edit_is_found_at_the_edited_entry() -> None:
    chain = _chain(5)
    chain[2] = replace(chain[2], actor="mallory")
    brk = first_break(chain)
    assert brk is not None and brk.seq == 3


def test_deletion_and_reorder_and_truncation() -> None:
    chain = _chain(5)
    brk = first_break(chain[:2] + chain[3:])
    assert brk is not None and brk.seq == 3
    swapped = [chain[0], chain[2], chain[1], *chain[3:]]
    brk = first_break(swapped)
    assert brk is not None and brk.seq == 2
    brk = first_break(chain[:4], head_seq=5, head_hash=chain[-1].hash)
    assert brk is not None and brk.seq == 5

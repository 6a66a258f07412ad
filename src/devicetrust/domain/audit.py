"""The audit hash chain: how an entry's hash is computed and how a chain is checked.

hash_n = SHA-256(hash_{n-1} || canonical JSON of entry n), with hash_0 = 32 zero bytes.
Editing, deleting or reordering any entry breaks every hash from there on; `first_break`
names the first entry that does not verify.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    occurred_at: datetime
    actor: str
    action: str
    subject: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int
    reason: str


def entry_hash(
    prev_hash: str,
    seq: int,
    occurred_at: datetime,
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, Any],
) -> str:
    body = json.dumps(
        {
            "seq": seq,
            "at": occurred_at.isoformat(),
            "actor": actor,
            "action": action,
            "subject": subject,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    ).encode()
    return hashlib.sha256(bytes.fromhex(prev_hash) + body).hexdigest()


class ChainVerifier:
    """Checks a chain one entry at a time, so a log of any length streams through in chunks.

    Feed entries in `seq` order; the first break is remembered and every later call returns
    it again (nothing after a break can be trusted).
    """

    def __init__(self) -> None:
        self._expected_seq = 1
        self._prev = GENESIS_HASH
        self._break: ChainBreak | None = None

    @property
    def verified(self) -> int:
        """How many entries verified before the first break (or so far)."""
        return self._expected_seq - 1

    @property
    def broken(self) -> ChainBreak | None:
        return self._break

    def feed(self, record: AuditRecord) -> ChainBreak | None:
        if self._break is None:
            self._break = self._check(record)
        return self._break

    def finish(
        self, head_seq: int | None = None, head_hash: str | None = None
    ) -> ChainBreak | None:
        """End of the stream; `head_seq`/`head_hash` (the last entry as recorded separately)
        catch a truncated tail."""
        if self._break is not None:
            return self._break
        last_seq = self._expected_seq - 1
        if head_seq is not None and head_seq != last_seq:
            self._break = ChainBreak(
                last_seq + 1, f"chain ends at {last_seq} but the head says {head_seq}"
            )
        elif head_hash is not None and last_seq > 0 and head_hash != self._prev:
            self._break = ChainBreak(last_seq, "last entry does not match the recorded head hash")
        return self._break

    def _check(self, record: AuditRecord) -> ChainBreak | None:
        expected = self._expected_seq
        if record.seq != expected:
            return ChainBreak(expected, f"entry {expected} is missing (next is {record.seq})")
        if record.prev_hash != self._prev:
            return ChainBreak(record.seq, "previous-hash link does not match the entry before it")
        computed = entry_hash(
            self._prev,
            record.seq,
            record.occurred_at,
            record.actor,
            record.action,
            record.subject,
            record.details,
        )
        if computed != record.hash:
            return ChainBreak(record.seq, "entry content does not match its hash (edited)")
        self._prev = record.hash
        self._expected_seq += 1
        return None


def first_break(
    records: Iterable[AuditRecord], head_seq: int | None = None, head_hash: str | None = None
) -> ChainBreak | None:
    """Walk the chain in `seq` order; return the first entry that does not verify.

    `head_seq`/`head_hash` (the last entry as recorded separately) catch a truncated tail.
    """
    verifier = ChainVerifier()
    for record in records:
        if verifier.feed(record) is not None:
            return verifier.broken
    return verifier.finish(head_seq, head_hash)

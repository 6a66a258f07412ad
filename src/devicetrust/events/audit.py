"""Reading and verifying the audit log (the hash chain written by `store.journal`).

Read-only: never writes, repairs or re-hashes an entry; a break is reported, not fixed.
`verify` streams the chain in `seq` order in chunks (one short transaction each), so a log
of any size is checked in bounded memory without holding a lock on writers.

What a break means: the chain catches edits, deletions, reordering and a cut tail made by
anyone who writes rows without recomputing every later hash and the head. Someone with
write access who recomputes them all is not caught by the chain alone; anchoring the head
hash outside the database (printing it, exporting it) is what catches that.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from devicetrust.domain.audit import AuditRecord, ChainBreak, ChainVerifier
from devicetrust.domain.errors import InvalidInput
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow, AuditHeadRow

MAX_LIMIT = 1000
MAX_SUBJECT_LENGTH = 200
_HEAD_ID = 1


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    count: int  # entries that verified (all of them when ok)
    first_break: ChainBreak | None
    head_seq: int  # the last sequence number the head recorded when verification started


def _to_record(row: AuditEntryRow) -> AuditRecord:
    return AuditRecord(
        seq=row.seq,
        occurred_at=row.occurred_at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        details=row.details,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class AuditLog:
    def __init__(self, db: Database, *, chunk_size: int = 1000) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size is positive")
        self._db = db
        self._chunk = chunk_size

    def entries(
        self, after_seq: int = 0, limit: int = 100, subject: str | None = None
    ) -> list[AuditRecord]:
        """Entries with `seq > after_seq`, oldest first; optionally about one subject."""
        if not 1 <= limit <= MAX_LIMIT or after_seq < 0:
            raise InvalidInput(
                "request.invalid_page", f"limit is 1-{MAX_LIMIT} and after_seq is >= 0"
            )
        if subject is not None and not 1 <= len(subject) <= MAX_SUBJECT_LENGTH:
            raise InvalidInput(
                "audit.invalid_subject", f"subject is 1-{MAX_SUBJECT_LENGTH} characters"
            )
        stmt = (
            select(AuditEntryRow)
            .where(AuditEntryRow.seq > after_seq)
            .order_by(AuditEntryRow.seq)
            .limit(limit)
        )
        if subject is not None:
            stmt = stmt.where(AuditEntryRow.subject == subject)
        with self._db.read() as session:
            return [_to_record(row) for row in session.execute(stmt).scalars()]

    def verify(self) -> VerifyResult:
        """Check every entry up to the head against its hash and its predecessor, then the
        head itself. Entries appended while this runs are left for the next run, except that
        the first of them must link to the head."""
        with self._db.read() as session:
            head = session.get(AuditHeadRow, _HEAD_ID)
            head_seq, head_hash = (head.seq, head.hash) if head is not None else (None, None)
        verifier = ChainVerifier()
        after = 0
        while verifier.broken is None:
            stmt = (
                select(AuditEntryRow)
                .where(AuditEntryRow.seq > after)
                .order_by(AuditEntryRow.seq)
                .limit(self._chunk)
            )
            if head_seq is not None:
                stmt = stmt.where(AuditEntryRow.seq <= head_seq)
            with self._db.read() as session:
                chunk = [_to_record(row) for row in session.execute(stmt).scalars()]
            for record in chunk:
                if verifier.feed(record) is not None:
                    break
            if len(chunk) < self._chunk:
                break
            after = chunk[-1].seq
        broken = verifier.finish(head_seq, head_hash)
        if broken is None and head_seq is None and verifier.verified > 0:
            broken = ChainBreak(verifier.verified, "the audit head record is missing")
        if broken is None and head_seq is not None and head_hash is not None:
            broken = self._check_link_after_head(head_seq, head_hash)
        return VerifyResult(
            ok=broken is None,
            count=verifier.verified,
            first_break=broken,
            head_seq=head_seq or 0,
        )

    def _check_link_after_head(self, head_seq: int, head_hash: str) -> ChainBreak | None:
        # Whatever was appended since the head was read must continue from it; an entry
        # written past the head without going through the journal does not.
        with self._db.read() as session:
            nxt = session.get(AuditEntryRow, head_seq + 1)
            if nxt is not None and nxt.prev_hash != head_hash:
                return ChainBreak(head_seq + 1, "entry after the recorded head does not link to it")
        return None

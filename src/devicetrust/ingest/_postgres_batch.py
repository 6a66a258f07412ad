"""A batch of reports on PostgreSQL: one statement, in a transaction left open for the
caller to commit. Private to `ingest.store`.

The statement (`_BATCH`) runs in one snapshot: each report's unit and the logical identity
it holds now, the INSERT of those it may file (a known unit; diagnostics only from a unit
holding an identity) skipping the ones already stored (ON CONFLICT DO NOTHING on
`uq_device_messages_key`), and per report what became of it. Its text is fixed and its
values are arrays (sent in binary: psycopg's text form quotes each element with a regular
expression), so psycopg prepares it once per connection whatever the batch size.

Beginning, writing and committing are separate steps so that a caller may prepare and
write the next batch while this one's commit waits for the disk
(`MessageStore.prepare_batch`): the rows of a batch written later get later ids. Never
commits on its own; a failure rolls back and releases the connection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from devicetrust.ingest.encodings import Encoding, encoding_of
from devicetrust.ingest.records import InboundMessage, MessageKind

_KIND_NAMES = {kind: kind.value for kind in MessageKind}  # `.value` is slow on 3.11 enums

# Per distinct report: (the unit is known, its logical id, that identity's name, inserted).
Placed = tuple[bool, str | None, str | None, bool]

_BATCH = """
WITH m AS (
  SELECT * FROM unnest(%(ord)b::int[], %(pid)b::text[], %(kind)b::text[], %(mkey)b::text[],
                       %(received)b::timestamptz[], %(payload)b::text[], %(size)b::int[])
    AS m(ord, physical_id, kind, message_key, received_at, payload, payload_bytes)
), h AS (
  SELECT m.*, p.id IS NOT NULL AS known, l.id AS logical_id, l.name AS logical_name
  FROM m
  LEFT JOIN physical_identities p ON p.id = m.physical_id
  LEFT JOIN bindings b ON b.physical_id = p.id AND b.ended_at IS NULL
  LEFT JOIN logical_identities l ON l.id = b.logical_id
), ins AS (
  INSERT INTO device_messages (kind, physical_id, logical_id, logical_name, message_key,
                               received_at, stored_at, payload, payload_bytes)
  SELECT kind, physical_id, logical_id, logical_name, message_key, received_at,
         %(now)b::timestamptz, payload::json, payload_bytes
  FROM h WHERE known AND (kind <> 'diagnostics' OR logical_id IS NOT NULL)
  ORDER BY ord
  ON CONFLICT (physical_id, kind, message_key) DO NOTHING
  RETURNING physical_id, kind, message_key
)
SELECT h.ord, h.known, h.logical_id, h.logical_name, ins.message_key IS NOT NULL
FROM h LEFT JOIN ins ON ins.physical_id = h.physical_id AND ins.kind = h.kind
                    AND ins.message_key = h.message_key
"""


@dataclass(slots=True)
class BatchRow:
    """A distinct report of a batch (by unit, stream and key) and its later copies."""

    index: int
    message: InboundMessage
    key: str
    body: dict[str, Any]
    twins: list[int] = field(default_factory=list)


class PostgresTransaction:
    """One batch's connection and transaction: begun here, `write` once, then `finish`.

    The connection is in autocommit mode and the transaction is spelled out (BEGIN, the
    statement, COMMIT), so that beginning it -- the pool's liveness check and BEGIN, each a
    round trip -- happens before the batch's turn to write, not during it."""

    __slots__ = ("_conn",)

    def __init__(self, engine: Engine) -> None:
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            conn.exec_driver_sql("BEGIN")
        except BaseException:
            conn.close()
            raise
        self._conn: Connection | None = conn

    def write(self, rows: list[BatchRow], now: datetime) -> list[Placed]:
        """Run the batch's statement; per row, in order, what it found and did. On an
        error the transaction is rolled back and the connection released."""
        if self._conn is None:
            raise RuntimeError("this batch was finished already")
        params = {
            "ord": list(range(len(rows))),
            "pid": [str(r.message.physical_id) for r in rows],
            "kind": [_KIND_NAMES[r.message.kind] for r in rows],
            "mkey": [r.key for r in rows],
            "received": [_utc(r.message.received_at) for r in rows],
            "payload": [_json_text(r) for r in rows],
            "size": [len(r.message.payload) for r in rows],
            "now": _utc(now),
        }
        try:
            found = self._conn.exec_driver_sql(_BATCH, params).all()
        except BaseException:
            self._release()
            raise
        placed: list[Placed] = [(False, None, None, False)] * len(rows)
        for ord_, known, logical_id, logical_name, inserted in found:
            placed[ord_] = (bool(known), logical_id, logical_name, bool(inserted))
        return placed

    def finish(self, commit: bool) -> None:
        """COMMIT (raises if it failed: then nothing may be acknowledged) or roll back
        (again: a no-op)."""
        if not commit:
            self._release()
            return
        if self._conn is None:
            raise RuntimeError("this batch was finished already")
        conn, self._conn = self._conn, None
        with conn:  # released, or discarded by the pool after a lost connection
            conn.exec_driver_sql("COMMIT")

    def _release(self) -> None:
        """Roll back and release: closing the connection returns it to the pool, whose
        reset rolls back the open transaction (or discards a broken connection)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC)


def _json_text(row: BatchRow) -> str:
    """The document as JSON text: a JSON payload as the device sent it (parsed and checked
    already, so valid UTF-8 JSON; PostgreSQL's `json` keeps the text as it is), any other
    encoding serialised as SQLAlchemy's JSON type would."""
    if encoding_of(row.message.content_type) is Encoding.JSON:
        return row.message.payload.decode("utf-8")
    return json.dumps(row.body)

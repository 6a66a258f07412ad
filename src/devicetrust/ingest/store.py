"""`MessageStore`: diagnostics and telemetry of the fleet, stored by identity.

    store = MessageStore(db, clock)
    results = store.store_batch([InboundMessage(pid, MessageKind.DIAGNOSTICS, body, now)])
    store.diagnostics_of("line-03-left-welding-12", since=now - timedelta(hours=1))
    store.telemetry_of(pid)

Each payload is decoded by its content type (JSON, CBOR, MessagePack: `ingest.encodings`)
and checked against its stream's schema (`ingest.schemas`, replaceable per store) before
anything is written; the stored document is JSON whatever the encoding.

Diagnostics are filed under the logical identity the sending unit holds when the message is
stored (its row id, so the history survives renames, and the name at that time), stamped
with the unit; after a replacement the new unit's reports continue the same history.
Telemetry is filed under the unit, stamped with the logical identity it held then. A
diagnostics report from a unit that holds no logical identity has nowhere to go and is
refused (`ingest.unit_unbound`).

A batch is one transaction that resolves its units and inserts the rows, skipping those
whose (unit, stream, key) is already stored (ON CONFLICT DO NOTHING on
`uq_device_messages_key`). On PostgreSQL that is a single statement (`_postgres_batch`:
the units' holders, the INSERT and the outcomes in one snapshot, prepared once per
connection) then COMMIT; on SQLite a holders query and a multi-row INSERT under `BEGIN
IMMEDIATE`. Every message gets a final outcome -- stored, duplicate or refused -- handed
out only after the commit, so the transport acknowledges nothing before it and never
loses an acknowledged message (`write_batch` splits the write from the commit, so a
caller can overlap commits). Never stores a message under an identity that the credential
did not prove, and never stores one twice. A JSON payload is stored as the device sent it
(parsed and checked first), CBOR and MessagePack as their JSON.

Knows nothing of MQTT or any broker: the embedded gateway and the Mosquitto ingest both
call it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, literal_column, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import DeviceTrustError, InvalidInput
from devicetrust.domain.ids import LogicalName, PhysicalId, parse_physical_id
from devicetrust.ingest._postgres_batch import BatchRow, Placed, PostgresTransaction
from devicetrust.ingest.encodings import DecodeLimits
from devicetrust.ingest.lookup import logical_id_of
from devicetrust.ingest.records import (
    InboundMessage,
    MessageKind,
    Outcome,
    StoredMessage,
    StoreResult,
)
from devicetrust.ingest.rules import DEFAULT_MAX_PAYLOAD, message_key, read_report
from devicetrust.ingest.schemas import DEFAULT_SCHEMAS, StreamSchema
from devicetrust.store.database import Database
from devicetrust.store.models import BindingRow, LogicalIdentityRow, PhysicalIdentityRow
from devicetrust.store.models_data_plane import DeviceMessageRow

# One transaction's rows; a SQLite statement takes at most 32,766 parameters (10 per row).
MAX_BATCH = 1000
MAX_QUERY = 1000


@dataclass(frozen=True, slots=True)
class _Holder:
    logical_id: str | None
    logical_name: str | None


class PreparedBatch:
    """A batch checked and ready to write (`MessageStore.prepare_batch`); nothing of it is
    in the database yet. On PostgreSQL it holds a connection with its transaction begun:
    pass it to `MessageStore.write` or `discard` it."""

    __slots__ = ("results", "rows", "transaction")

    def __init__(
        self,
        results: list[StoreResult | None],
        rows: dict[tuple[str, str, str], BatchRow],
        transaction: PostgresTransaction | None,
    ) -> None:
        self.results = results
        self.rows = rows
        self.transaction = transaction

    def discard(self) -> None:
        transaction, self.transaction = self.transaction, None
        if transaction is not None:
            transaction.finish(commit=False)


class WrittenBatch:
    """A batch written by `MessageStore.write`, not yet committed: `commit` makes it
    durable and only then hands out the results (the transport acknowledges nothing
    before); `rollback` stores none of it."""

    __slots__ = ("_results", "_transaction")

    def __init__(self, results: list[StoreResult], transaction: PostgresTransaction | None) -> None:
        self._results = results
        self._transaction = transaction

    def commit(self) -> list[StoreResult]:
        if self._transaction is not None:
            self._transaction.finish(commit=True)
        return self._results

    def rollback(self) -> None:
        if self._transaction is not None:
            self._transaction.finish(commit=False)


class MessageStore:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD,
        schemas: Mapping[MessageKind, StreamSchema] = DEFAULT_SCHEMAS,
    ) -> None:
        if max_payload_bytes < 1:
            raise ValueError("max_payload_bytes is positive")
        self._db = db
        self._clock = clock
        self._max_payload = max_payload_bytes
        self._limits = DecodeLimits(max_bytes=max_payload_bytes)
        self._schemas = dict(schemas)

    @property
    def max_payload_bytes(self) -> int:
        return self._max_payload

    def store(self, message: InboundMessage) -> StoreResult:
        return self.store_batch([message])[0]

    def store_batch(self, messages: Sequence[InboundMessage]) -> list[StoreResult]:
        """Store up to `MAX_BATCH` messages in one transaction; one result per message, in
        order. Bad messages are refused one by one, never failing the batch."""
        return self.write_batch(messages).commit()

    def write_batch(self, messages: Sequence[InboundMessage]) -> WrittenBatch:
        """`store_batch` without its commit: see `prepare_batch`."""
        return self.write(self.prepare_batch(messages))

    def prepare_batch(self, messages: Sequence[InboundMessage]) -> PreparedBatch:
        """`store_batch` in three steps, so that a caller can overlap batches: this one
        checks the messages (decoding, schemas, keys) and, on PostgreSQL, begins the
        batch's transaction; `write` writes it; the `commit` of what it returns makes it
        durable (SQLite commits in `write` already). Batches written one after another
        keep that order in the table even when their commits overlap; only the writes
        need to follow each other."""
        if len(messages) > MAX_BATCH:
            raise InvalidInput("ingest.batch_too_large", f"at most {MAX_BATCH} messages a batch")
        results: list[StoreResult | None] = [None] * len(messages)
        rows: dict[tuple[str, str, str], BatchRow] = {}
        for index, message in enumerate(messages):
            try:
                key = message_key(message.kind, message.payload, message.message_id)
                body = read_report(
                    message.kind,
                    message.payload,
                    message.content_type,
                    limits=self._limits,
                    schemas=self._schemas,
                )
            except DeviceTrustError as exc:
                results[index] = StoreResult(
                    Outcome.REFUSED, "", reason=exc.code, detail=exc.message
                )
                continue
            ident = (str(message.physical_id), message.kind, key)  # StrEnum: equal to its value
            if ident in rows:  # the same report twice in one batch
                rows[ident].twins.append(index)
                continue
            rows[ident] = BatchRow(index, message, key, body)
        transaction = None
        if rows and self._db.is_postgres:
            transaction = PostgresTransaction(self._db.engine)
        return PreparedBatch(results, rows, transaction)

    def write(self, batch: PreparedBatch) -> WrittenBatch:
        """Write a prepared batch (uncommitted on PostgreSQL: see `prepare_batch`)."""
        results, rows = batch.results, list(batch.rows.values())
        transaction, batch.transaction = batch.transaction, None
        now = self._clock.now()
        if transaction is not None:
            placed = transaction.write(rows, now)
        elif rows:
            placed = self._insert_sqlite(rows, now)
        else:
            placed = []
        for row, (known, logical_id, logical_name, inserted) in zip(rows, placed, strict=True):
            name = LogicalName(logical_name) if logical_name else None
            if not known:
                outcome = StoreResult(Outcome.REFUSED, row.key, reason="ingest.unit_unknown")
            elif row.message.kind is MessageKind.DIAGNOSTICS and logical_id is None:
                outcome = StoreResult(Outcome.REFUSED, row.key, reason="ingest.unit_unbound")
            else:
                outcome = StoreResult(
                    Outcome.STORED if inserted else Outcome.DUPLICATE, row.key, name
                )
            results[row.index] = outcome
            for twin in row.twins:  # a duplicate shares its first copy's fate, never stored
                results[twin] = (
                    outcome
                    if outcome.outcome is Outcome.REFUSED
                    else StoreResult(Outcome.DUPLICATE, row.key, name)
                )
        return WrittenBatch([r for r in results if r is not None], transaction)

    def _insert_sqlite(self, rows: list[BatchRow], now: datetime) -> list[Placed]:
        """Holders, then a Core executemany INSERT ("insertmanyvalues": one compiled
        statement, cached), in one `BEGIN IMMEDIATE` transaction."""
        placed: list[Placed] = []
        values: list[dict[str, Any]] = []
        with self._db.transaction() as session:
            holders = _holders(session, {r.message.physical_id for r in rows})
            for row in rows:
                holder = holders.get(row.message.physical_id)
                known = holder is not None
                lid = holder.logical_id if holder else None
                name = holder.logical_name if holder else None
                placed.append((known, lid, name, False))
                if not known or (row.message.kind is MessageKind.DIAGNOSTICS and lid is None):
                    continue
                values.append(
                    {
                        "kind": row.message.kind.value,
                        "physical_id": row.message.physical_id,
                        "logical_id": lid,
                        "logical_name": name,
                        "message_key": row.key,
                        "received_at": row.message.received_at,
                        "stored_at": now,
                        "payload": row.body,
                        "payload_bytes": len(row.message.payload),
                    }
                )
            if not values:
                return placed
            table = cast(Table, DeviceMessageRow.__table__)
            stmt = (
                sqlite_insert(table)
                .on_conflict_do_nothing(index_elements=["physical_id", "kind", "message_key"])
                .returning(table.c.physical_id, table.c.kind, table.c.message_key)
            )
            inserted = {(p, k, m) for p, k, m in session.connection().execute(stmt, values)}
        for i, row in enumerate(rows):
            ident = (str(row.message.physical_id), row.message.kind.value, row.key)
            if ident in inserted:
                placed[i] = (*placed[i][:3], True)
        return placed

    # ---- queries -------------------------------------------------------------------------

    def diagnostics_of(
        self,
        logical_name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[StoredMessage]:
        """Diagnostics of a logical identity (by current name, or a former one in its grace
        period), newest first, across every unit that held it."""
        with self._db.read() as session:
            logical_id = logical_id_of(session, logical_name, self._clock.now())
            where = [
                DeviceMessageRow.logical_id == logical_id,
                _stream(MessageKind.DIAGNOSTICS),
            ]
            return _query(session, where, since, until, limit)

    def telemetry_of(
        self,
        physical_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[StoredMessage]:
        """Telemetry of one unit, newest first (never another unit's)."""
        pid = parse_physical_id(physical_id)
        where = [
            DeviceMessageRow.physical_id == pid,
            _stream(MessageKind.TELEMETRY),
        ]
        with self._db.read() as session:
            return _query(session, where, since, until, limit)


def _holders(session: Session, units: set[PhysicalId]) -> dict[str, _Holder]:
    """Each known unit of the batch with the logical identity it holds now (if any)."""
    found = session.execute(
        select(PhysicalIdentityRow.id, LogicalIdentityRow.id, LogicalIdentityRow.name)
        .outerjoin(
            BindingRow,
            and_(BindingRow.physical_id == PhysicalIdentityRow.id, BindingRow.ended_at.is_(None)),
        )
        .outerjoin(LogicalIdentityRow, LogicalIdentityRow.id == BindingRow.logical_id)
        .where(PhysicalIdentityRow.id.in_(sorted(units)))
    )
    return {pid: _Holder(lid, name) for pid, lid, name in found}


def _stream(kind: MessageKind) -> ColumnElement[bool]:
    """`kind = '<stream>'` with the stream as a literal, as in the predicate of its partial
    index (models_data_plane): with a bound parameter a generic plan could not use it."""
    return DeviceMessageRow.kind == literal_column(f"'{kind.value}'")  # a fixed enum value


def _query(
    session: Session,
    where: list[ColumnElement[bool]],
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[StoredMessage]:
    if not 1 <= limit <= MAX_QUERY:
        raise InvalidInput("ingest.bad_limit", f"limit is 1-{MAX_QUERY}")
    if since is not None:
        where.append(DeviceMessageRow.received_at >= since)
    if until is not None:
        where.append(DeviceMessageRow.received_at < until)
    rows = session.execute(
        select(DeviceMessageRow)
        .where(*where)
        .order_by(DeviceMessageRow.received_at.desc(), DeviceMessageRow.id.desc())
        .limit(limit)
    ).scalars()
    return [
        StoredMessage(
            kind=MessageKind(row.kind),
            physical_id=PhysicalId(row.physical_id),
            logical_name=LogicalName(row.logical_name) if row.logical_name else None,
            message_key=row.message_key,
            received_at=row.received_at,
            payload=row.payload,
        )
        for row in rows
    ]

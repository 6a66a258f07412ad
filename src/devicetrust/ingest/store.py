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

A batch is one transaction: a few queries to resolve its units, one multi-row INSERT that
skips rows whose (unit, stream, key) is already stored (ON CONFLICT DO NOTHING on
`uq_device_messages_key`), one commit. Every message gets a final outcome -- stored,
duplicate or refused -- so the transport acknowledges each one only after this commit and
never loses an acknowledged message. Never stores a message under an identity that the
credential did not prove, and never stores one twice.

Knows nothing of MQTT or any broker: the embedded gateway and the Mosquitto ingest both
call it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import DeviceTrustError, InvalidInput
from devicetrust.domain.ids import LogicalName, PhysicalId, parse_physical_id
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


@dataclass(slots=True)
class _Row:
    index: int
    values: dict[str, Any]


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
        if len(messages) > MAX_BATCH:
            raise InvalidInput("ingest.batch_too_large", f"at most {MAX_BATCH} messages a batch")
        results: list[StoreResult | None] = [None] * len(messages)
        candidates: list[tuple[int, InboundMessage, str, dict[str, Any]]] = []
        for index, message in enumerate(messages):
            try:
                key = message_key(message.kind, message.payload, message.message_id)
                body = read_report(message.kind, message.payload, message.content_type,
                                   limits=self._limits, schemas=self._schemas)
            except DeviceTrustError as exc:
                results[index] = StoreResult(
                    Outcome.REFUSED, "", reason=exc.code, detail=exc.message
                )
                continue
            candidates.append((index, message, key, body))
        if candidates:
            self._insert(candidates, results)
        return [r for r in results if r is not None]

    def _insert(
        self,
        candidates: list[tuple[int, InboundMessage, str, dict[str, Any]]],
        results: list[StoreResult | None],
    ) -> None:
        now = self._clock.now()
        rows: dict[tuple[str, str, str], _Row] = {}
        with self._db.transaction() as session:
            holders = _holders(session, {m.physical_id for _, m, _, _ in candidates})
            for index, message, key, body in candidates:
                holder = holders.get(message.physical_id)
                name = LogicalName(holder.logical_name) if holder and holder.logical_name else None
                if holder is None:
                    results[index] = StoreResult(Outcome.REFUSED, key, reason="ingest.unit_unknown")
                    continue
                if message.kind is MessageKind.DIAGNOSTICS and holder.logical_id is None:
                    results[index] = StoreResult(Outcome.REFUSED, key, reason="ingest.unit_unbound")
                    continue
                ident: tuple[str, str, str] = (str(message.physical_id), message.kind.value, key)
                results[index] = StoreResult(Outcome.DUPLICATE, key, name)
                if ident in rows:
                    continue  # the same report twice in one batch
                rows[ident] = _Row(
                    index,
                    {
                        "kind": message.kind.value,
                        "physical_id": message.physical_id,
                        "logical_id": holder.logical_id,
                        "logical_name": holder.logical_name,
                        "message_key": key,
                        "received_at": message.received_at,
                        "stored_at": now,
                        "payload": body,
                        "payload_bytes": len(message.payload),
                    },
                )
            if not rows:
                return
            inserted = self._insert_new(session, [row.values for row in rows.values()])
        for ident, row in rows.items():
            if ident in inserted:
                previous = results[row.index]
                assert previous is not None
                results[row.index] = StoreResult(
                    Outcome.STORED, previous.message_key, previous.logical_name
                )

    def _insert_new(
        self, session: Session, values: list[dict[str, Any]]
    ) -> set[tuple[str, str, str]]:
        """INSERT the rows, skipping those already stored; the keys of those inserted.
        Core executemany ("insertmanyvalues"): one compiled statement, cached, sent in
        multi-row pages, instead of a statement compiled per batch size."""
        insert = pg_insert if self._db.is_postgres else sqlite_insert
        table = cast(Table, DeviceMessageRow.__table__)
        stmt = (
            insert(table)
            .on_conflict_do_nothing(index_elements=["physical_id", "kind", "message_key"])
            .returning(table.c.physical_id, table.c.kind, table.c.message_key)
        )
        result = session.connection().execute(stmt, values)
        return {(p, k, m) for p, k, m in result}

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
                DeviceMessageRow.kind == MessageKind.DIAGNOSTICS.value,
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
            DeviceMessageRow.kind == MessageKind.TELEMETRY.value,
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

"""Row lookups, row-to-record conversion and the creation of a logical identity row, shared
by the identity service modules."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Insert,
    String,
    Table,
    and_,
    bindparam,
    exists,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, make_transient_to_detached

from devicetrust.domain.errors import Conflict, NotFound
from devicetrust.domain.events import EventType
from devicetrust.domain.ids import LogicalName, PhysicalId, parse_logical_name, parse_physical_id
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.domain.records import Binding, LogicalIdentity, PhysicalIdentity
from devicetrust.store.journal import record
from devicetrust.store.models import (
    BindingRow,
    LogicalIdentityRow,
    NameReleasesRow,
    PhysicalIdentityRow,
    RetiredNameRow,
)
from devicetrust.store.registry import unit_not_found
from devicetrust.store.types import UTCDateTime

_RELEASES = cast(Table, NameReleasesRow.__table__)


def _count_release(postgres: bool) -> Insert:
    """Built once per dialect: the count raised, the row made when missing (an upsert)."""
    insert = (postgresql.insert if postgres else sqlite.insert)(_RELEASES)
    return insert.values(id=1, count=1).on_conflict_do_update(
        index_elements=["id"], set_={"count": _RELEASES.c.count + 1}
    )


_COUNT_RELEASE = {postgres: _count_release(postgres) for postgres in (False, True)}


def count_release(session: Session) -> None:
    """Record, in the caller's transaction, that a held logical name may be free once it
    commits (its binding ended, or a rename retired it): pool allocation, which remembers
    where a pool's first free name was, then looks from the pool's first name again."""
    session.execute(_COUNT_RELEASE[session.get_bind().dialect.name == "postgresql"])


def logical_row(
    session: Session, name: str, now: datetime, *, lock: bool = False
) -> LogicalIdentityRow:
    """Resolve a logical name: the current name, or a former one still in its grace period."""
    lname = parse_logical_name(name)
    stmt = select(LogicalIdentityRow).where(LogicalIdentityRow.name == lname)
    row = session.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()
    if row is not None:
        return row
    alias = session.execute(
        select(RetiredNameRow.logical_id)
        .where(RetiredNameRow.name == lname, RetiredNameRow.resolvable_until > now)
        .order_by(RetiredNameRow.retired_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if alias is not None:
        by_id = select(LogicalIdentityRow).where(LogicalIdentityRow.id == alias)
        found = session.execute(by_id.with_for_update() if lock else by_id).scalar_one_or_none()
        if found is not None:
            return found
    raise NotFound("identity.logical_not_found", f"no logical identity {lname!r}", name=lname)


def check_not_in_grace(
    session: Session, name: LogicalName, now: datetime, allow_logical_id: str = ""
) -> None:
    """Refuse a name that a renamed identity (other than `allow_logical_id`) was known by
    and that still resolves to it."""
    in_grace = session.execute(
        select(func.count())
        .select_from(RetiredNameRow)
        .where(
            RetiredNameRow.name == name,
            RetiredNameRow.resolvable_until > now,
            RetiredNameRow.logical_id != allow_logical_id,
        )
    ).scalar_one()
    if in_grace:
        raise Conflict(
            "identity.name_in_grace",
            f"{name!r} was recently used by another identity and still resolves to it",
            name=name,
        )


def add_logical(
    session: Session, name: LogicalName, attributes: dict[str, Any], *, now: datetime, actor: str
) -> LogicalIdentityRow:
    """A new logical identity with its `logical.created` event, for a name found free."""
    row = LogicalIdentityRow(
        id=str(uuid.uuid4()), name=name, attributes=attributes, created_at=now, updated_at=now
    )
    session.add(row)
    _record_created(session, row, now=now, actor=actor)
    return row


def _record_created(
    session: Session, row: LogicalIdentityRow, *, now: datetime, actor: str
) -> None:
    record(
        session,
        at=now,
        actor=actor,
        event_type=EventType.LOGICAL_CREATED,
        subject=row.name,
        payload={"logical_id": row.id, "name": row.name, "attributes": row.attributes},
    )


def _insert_if_free(postgres: bool) -> Insert:
    """Built once per dialect: the new identity row, selected only while no renamed identity
    still resolves by the name, and dropped on a name conflict (ON CONFLICT DO NOTHING)."""
    free = ~exists().where(
        RetiredNameRow.name == bindparam("name"),
        RetiredNameRow.resolvable_until > bindparam("now", type_=UTCDateTime()),
    )
    row = select(
        bindparam("id", type_=String),
        bindparam("name", type_=String),
        bindparam("attributes", type_=JSON),
        bindparam("now", type_=UTCDateTime()),
        bindparam("now", type_=UTCDateTime()),
    ).where(free)
    table = cast(Table, LogicalIdentityRow.__table__)
    insert = (postgresql.insert if postgres else sqlite.insert)(table)
    columns = ["id", "name", "attributes", "created_at", "updated_at"]
    return (
        insert.from_select(columns, row)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(table.c.id)
    )


_INSERT_IF_FREE = {postgres: _insert_if_free(postgres) for postgres in (False, True)}


def add_logical_if_free(
    session: Session, name: LogicalName, *, now: datetime, actor: str
) -> LogicalIdentityRow | None:
    """`add_logical` (no attributes) in one statement, for a name that may be taken: None,
    and nothing written, when an identity has the name or a renamed one still resolves by it.
    A concurrent creation of the same name is waited for, then found (never a unique
    violation)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    logical_id = str(uuid.uuid4())
    inserted = session.execute(
        _INSERT_IF_FREE[postgres], {"id": logical_id, "name": name, "attributes": {}, "now": now}
    ).scalar_one_or_none()
    if inserted is None:
        return None
    # The session takes the row as the one now in the database (no second INSERT, no SELECT).
    row = LogicalIdentityRow(
        id=logical_id, name=name, attributes={}, created_at=now, updated_at=now
    )
    make_transient_to_detached(row)
    session.add(row)
    _record_created(session, row, now=now, actor=actor)
    return row


def locked_unit(
    session: Session, physical_id: str
) -> tuple[PhysicalIdentityRow, BindingRow | None]:
    """The unit's row locked FOR UPDATE and its open binding (None: it holds no identity),
    in one statement; or `identity.physical_not_found`."""
    pid = parse_physical_id(physical_id)
    found = session.execute(
        select(PhysicalIdentityRow, BindingRow)
        .outerjoin(
            BindingRow,
            and_(BindingRow.physical_id == PhysicalIdentityRow.id, BindingRow.ended_at.is_(None)),
        )
        .where(PhysicalIdentityRow.id == pid)
        .with_for_update(of=PhysicalIdentityRow)
    ).one_or_none()
    if found is None:
        raise unit_not_found(pid)
    return found[0], found[1]


def open_binding_of_logical(session: Session, logical_id: str) -> BindingRow | None:
    return session.execute(
        select(BindingRow).where(BindingRow.logical_id == logical_id, BindingRow.ended_at.is_(None))
    ).scalar_one_or_none()


def open_binding_of_physical(session: Session, physical_id: str) -> BindingRow | None:
    return session.execute(
        select(BindingRow).where(
            BindingRow.physical_id == physical_id, BindingRow.ended_at.is_(None)
        )
    ).scalar_one_or_none()


def current_name_of(session: Session, logical_id: str) -> LogicalName:
    name = session.execute(
        select(LogicalIdentityRow.name).where(LogicalIdentityRow.id == logical_id)
    ).scalar_one()
    return LogicalName(name)


def to_physical(session: Session, row: PhysicalIdentityRow) -> PhysicalIdentity:
    binding = open_binding_of_physical(session, row.id)
    return PhysicalIdentity(
        physical_id=PhysicalId(row.id),
        model=row.model,
        state=DeviceState(row.state),
        manufactured_at=row.manufactured_at,
        hardware_serials=dict(row.hardware_serials),
        key_fingerprints=tuple(row.key_fingerprints),
        logical_name=current_name_of(session, binding.logical_id) if binding else None,
    )


def to_logical(session: Session, row: LogicalIdentityRow) -> LogicalIdentity:
    binding = open_binding_of_logical(session, row.id)
    former = session.execute(
        select(RetiredNameRow.name)
        .where(RetiredNameRow.logical_id == row.id)
        .order_by(RetiredNameRow.retired_at)
    ).scalars()
    return LogicalIdentity(
        logical_id=row.id,
        name=LogicalName(row.name),
        attributes=dict(row.attributes),
        created_at=row.created_at,
        physical_id=PhysicalId(binding.physical_id) if binding else None,
        former_names=tuple(former),
    )


def to_binding(row: BindingRow, current_name: LogicalName) -> Binding:
    return Binding(
        logical_id=row.logical_id,
        logical_name=current_name,
        name_at_start=row.name_at_start,
        physical_id=PhysicalId(row.physical_id),
        started_at=row.started_at,
        start_reason=row.start_reason,
        started_by=row.started_by,
        ended_at=row.ended_at,
        end_reason=row.end_reason,
        ended_by=row.ended_by,
    )

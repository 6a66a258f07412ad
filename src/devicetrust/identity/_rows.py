"""Row lookups, row-to-record conversion and the creation of a logical identity row, shared
by the identity service modules."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from devicetrust.domain.errors import Conflict, NotFound
from devicetrust.domain.events import EventType
from devicetrust.domain.ids import LogicalName, PhysicalId, parse_logical_name
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.domain.records import Binding, LogicalIdentity, PhysicalIdentity
from devicetrust.store.journal import record
from devicetrust.store.models import (
    BindingRow,
    LogicalIdentityRow,
    PhysicalIdentityRow,
    RetiredNameRow,
)


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
    record(
        session,
        at=now,
        actor=actor,
        event_type=EventType.LOGICAL_CREATED,
        subject=name,
        payload={"logical_id": row.id, "name": name, "attributes": attributes},
    )
    return row


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

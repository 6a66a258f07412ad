"""What the allocation decision needs to know, read in the attempt's read session."""

from __future__ import annotations

import itertools
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import CompoundSelect, String, any_, bindparam, select, union_all
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from devicetrust.domain.ids import LogicalName, PhysicalId
from devicetrust.provisioning.allocation import Facts, PoolPattern
from devicetrust.provisioning.records import AllocationPolicy, Enrollment, RegistrationStatus
from devicetrust.store.models import (
    BindingRow,
    LogicalIdentityRow,
    RegistrationRow,
    RetiredNameRow,
)


def current_name(session: Session, physical_id: PhysicalId) -> LogicalName | None:
    name = session.execute(
        select(LogicalIdentityRow.name)
        .join(BindingRow, BindingRow.logical_id == LogicalIdentityRow.id)
        .where(BindingRow.physical_id == physical_id, BindingRow.ended_at.is_(None))
    ).scalar_one_or_none()
    return LogicalName(name) if name is not None else None


def _held_by_others_statement(postgres: bool) -> CompoundSelect[Any]:
    """Built once per dialect. On PostgreSQL the names travel as one array parameter
    (`= ANY(:names)`): the statement text stays the same whatever the number of names, so
    the driver prepares it once, instead of rendering and parsing hundreds of placeholders
    of an expanding `IN` for every window of a pool."""
    names: Any = bindparam("names", type_=ARRAY(String)) if postgres else None

    def among(column: Any) -> Any:
        if postgres:
            return column == any_(names)
        return column.in_(bindparam("names", expanding=True))

    held = (
        select(LogicalIdentityRow.name)
        .join(BindingRow, BindingRow.logical_id == LogicalIdentityRow.id)
        .where(
            BindingRow.ended_at.is_(None),
            BindingRow.physical_id != bindparam("physical_id"),
            among(LogicalIdentityRow.name),
        )
    )
    retired = select(RetiredNameRow.name).where(
        RetiredNameRow.resolvable_until > bindparam("now"), among(RetiredNameRow.name)
    )
    return union_all(held, retired)


_HELD_BY_OTHERS = {postgres: _held_by_others_statement(postgres) for postgres in (False, True)}


def held_by_others(
    session: Session, physical_id: PhysicalId, now: datetime, *, names: Collection[str]
) -> frozenset[str]:
    """Those of `names` that another unit holds, or that are a renamed identity's former
    name still resolving (cannot be created anew). Indexed lookups on the unique names, in
    one round trip."""
    if not names:
        return frozenset()
    postgres = session.get_bind().dialect.name == "postgresql"
    found = session.execute(
        _HELD_BY_OTHERS[postgres],
        {"names": list(names), "physical_id": physical_id, "now": now},
    ).scalars()
    return frozenset(found)


POOL_WINDOW = 256


def pool_taken(
    session: Session, physical_id: PhysicalId, now: datetime, pattern: PoolPattern
) -> frozenset[str]:
    """The taken names of the pool, window by window from its first name, up to the first
    window that has a free name: enough for `next_free` and the first few free names, at the
    cost of one indexed lookup per window, however large the pool and its other holders."""
    taken: set[str] = set()
    names = list(itertools.islice(pattern.names(), POOL_WINDOW))
    start = pattern.start
    while names:
        held = held_by_others(session, physical_id, now, names=names)
        taken |= held
        if len(held) < len(names):
            break
        start += POOL_WINDOW
        names = [pattern.name(n) for n in range(start, min(start + POOL_WINDOW, pattern.end + 1))]
    return frozenset(taken)


def gather(
    session: Session, physical_id: PhysicalId, enrollment: Enrollment, now: datetime
) -> Facts:
    registration = session.get(RegistrationRow, physical_id)
    return gather_for(session, physical_id, enrollment, now, registration)


def gather_for(
    session: Session,
    physical_id: PhysicalId,
    enrollment: Enrollment,
    now: datetime,
    registration: RegistrationRow | None,
) -> Facts:
    """`gather`, for a caller that has read the unit's registration in this session."""
    current = current_name(session, physical_id)
    approved = (
        LogicalName(registration.logical_name)
        if registration is not None
        and registration.status == RegistrationStatus.APPROVED.value
        and registration.logical_name
        else None
    )
    allocation = enrollment.allocation
    wanted = {n for n in (allocation.static_name, approved, enrollment.replaces) if n}
    taken = held_by_others(session, physical_id, now, names=wanted)
    if allocation.policy is AllocationPolicy.POOL and allocation.pool_pattern and not approved:
        taken |= pool_taken(session, physical_id, now, PoolPattern.parse(allocation.pool_pattern))
    return Facts(
        current=current,
        taken=taken,
        approved=approved,
        replaces_held=enrollment.replaces is not None and enrollment.replaces in taken,
    )

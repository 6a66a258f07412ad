"""What the allocation decision needs to know, read in the attempt's read session."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CompoundSelect, String, and_, any_, bindparam, select, union_all
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from devicetrust.domain.ids import LogicalName, PhysicalId
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.provisioning._pool import PoolHints, PoolRead, read_pool
from devicetrust.provisioning.allocation import Facts, PoolPattern
from devicetrust.provisioning.records import AllocationPolicy, Enrollment, RegistrationStatus
from devicetrust.store.models import (
    BindingRow,
    LogicalIdentityRow,
    PhysicalIdentityRow,
    RegistrationRow,
    RetiredNameRow,
)
from devicetrust.store.registry import unit_not_found


@dataclass(frozen=True, slots=True)
class UnitFacts:
    """What a provisioning reads of the unit: its state, whether it has a registration, the
    name an operator approved for it (manual allocation) and the name it holds."""

    state: DeviceState
    registered: bool
    approved: LogicalName | None
    current: LogicalName | None


_UNIT_FACTS = (
    select(
        PhysicalIdentityRow.state,
        RegistrationRow.physical_id,
        RegistrationRow.status,
        RegistrationRow.logical_name,
        LogicalIdentityRow.name,
    )
    .outerjoin(RegistrationRow, RegistrationRow.physical_id == PhysicalIdentityRow.id)
    .outerjoin(
        BindingRow,
        and_(BindingRow.physical_id == PhysicalIdentityRow.id, BindingRow.ended_at.is_(None)),
    )
    .outerjoin(LogicalIdentityRow, LogicalIdentityRow.id == BindingRow.logical_id)
    .where(PhysicalIdentityRow.id == bindparam("physical_id"))
)


def unit_facts(session: Session, physical_id: PhysicalId) -> UnitFacts | None:
    """The unit's `UnitFacts` in one statement (plain rows: nothing enters the session's
    identity map); None when the registry has no such unit."""
    found = session.execute(_UNIT_FACTS, {"physical_id": physical_id}).one_or_none()
    if found is None:
        return None
    state, registered, status, approved, current = found
    return UnitFacts(
        state=DeviceState(state),
        registered=registered is not None,
        approved=(
            LogicalName(approved)
            if status == RegistrationStatus.APPROVED.value and approved
            else None
        ),
        current=LogicalName(current) if current is not None else None,
    )


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


def gather(
    session: Session,
    physical_id: PhysicalId,
    enrollment: Enrollment,
    now: datetime,
    *,
    hints: PoolHints,
    skip: Collection[str] = (),
) -> Facts:
    unit = unit_facts(session, physical_id)
    if unit is None:
        raise unit_not_found(physical_id)
    return gather_for(session, physical_id, enrollment, now, unit, hints=hints, skip=skip)


def gather_for(
    session: Session,
    physical_id: PhysicalId,
    enrollment: Enrollment,
    now: datetime,
    unit: UnitFacts,
    *,
    hints: PoolHints,
    skip: Collection[str] = (),
) -> Facts:
    """`gather`, for a caller that has read the `UnitFacts` in this session. A pool is read
    from its hint (`_pool.read_pool`); `skip`: names it must not offer (lost to another
    unit), counted as taken."""
    approved, current = unit.approved, unit.current
    allocation = enrollment.allocation
    wanted = {n for n in (allocation.static_name, approved, enrollment.replaces) if n}
    taken = held_by_others(session, physical_id, now, names=wanted)
    pool: PoolRead | None = None
    if allocation.policy is AllocationPolicy.POOL and allocation.pool_pattern and not approved:
        pattern = PoolPattern.parse(allocation.pool_pattern)
        key = (enrollment.enrollment_id, allocation.pool_pattern)
        pool = read_pool(session, physical_id, now, pattern, hints=hints, pool=key, skip=skip)
        taken |= pool.taken | frozenset(skip)
    return Facts(
        current=current,
        taken=taken,
        approved=approved,
        replaces_held=enrollment.replaces is not None and enrollment.replaces in taken,
        pool_from=pool.first if pool is not None else None,
        pool_free=pool.free if pool is not None else (),
    )

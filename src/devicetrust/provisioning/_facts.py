"""What the allocation decision needs to know, read in the attempt's read session."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select
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


def held_by_others(
    session: Session,
    physical_id: PhysicalId,
    now: datetime,
    *,
    names: Collection[str] = (),
    prefix: str | None = None,
) -> frozenset[str]:
    """Names (exact `names`, or starting with `prefix`) that another unit holds, or that are
    a renamed identity's former name still resolving (cannot be created anew)."""
    held = (
        select(LogicalIdentityRow.name)
        .join(BindingRow, BindingRow.logical_id == LogicalIdentityRow.id)
        .where(BindingRow.ended_at.is_(None), BindingRow.physical_id != physical_id)
    )
    retired = select(RetiredNameRow.name).where(RetiredNameRow.resolvable_until > now)
    if prefix is not None:
        # Pool prefixes are parts of valid logical names: no LIKE wildcards in them.
        held = held.where(LogicalIdentityRow.name.startswith(prefix, autoescape=True))
        retired = retired.where(RetiredNameRow.name.startswith(prefix, autoescape=True))
    else:
        if not names:
            return frozenset()
        held = held.where(LogicalIdentityRow.name.in_(list(names)))
        retired = retired.where(RetiredNameRow.name.in_(list(names)))
    found = set(session.execute(held).scalars())
    found.update(session.execute(retired).scalars())
    return frozenset(found)


def gather(
    session: Session, physical_id: PhysicalId, enrollment: Enrollment, now: datetime
) -> Facts:
    current = current_name(session, physical_id)
    registration = session.get(RegistrationRow, physical_id)
    approved = (
        LogicalName(registration.logical_name)
        if registration is not None
        and registration.status == RegistrationStatus.APPROVED.value
        and registration.logical_name
        else None
    )
    allocation = enrollment.allocation
    wanted = {n for n in (allocation.static_name, approved, enrollment.replaces) if n}
    prefix = None
    if allocation.policy is AllocationPolicy.POOL and allocation.pool_pattern and not approved:
        prefix = PoolPattern.parse(allocation.pool_pattern).prefix
    taken = held_by_others(session, physical_id, now, names=wanted, prefix=prefix)
    if prefix is not None and wanted:
        taken |= held_by_others(session, physical_id, now, names=wanted)
    return Facts(
        current=current,
        taken=taken,
        approved=approved,
        replaces_held=enrollment.replaces is not None and enrollment.replaces in taken,
    )

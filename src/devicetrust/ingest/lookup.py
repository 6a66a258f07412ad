"""Registry lookups of the data plane: a logical name to its stable row id (current name, or
a former one still in its grace period), the unit holding an identity now. Read-only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from devicetrust.domain.errors import NotFound
from devicetrust.domain.ids import LogicalName, parse_logical_name
from devicetrust.store.models import BindingRow, LogicalIdentityRow, RetiredNameRow


def logical_id_of(session: Session, name: str, now: datetime) -> str:
    lname = parse_logical_name(name)
    found = session.execute(
        select(LogicalIdentityRow.id).where(LogicalIdentityRow.name == lname)
    ).scalar_one_or_none()
    if found is None:
        found = session.execute(
            select(RetiredNameRow.logical_id)
            .where(RetiredNameRow.name == lname, RetiredNameRow.resolvable_until > now)
            .order_by(RetiredNameRow.retired_at.desc())
            .limit(1)
        ).scalar_one_or_none()
    if found is None:
        raise NotFound("identity.logical_not_found", f"no logical identity {lname!r}", name=lname)
    return found


def current_name(session: Session, logical_id: str) -> LogicalName:
    name = session.execute(
        select(LogicalIdentityRow.name).where(LogicalIdentityRow.id == logical_id)
    ).scalar_one()
    return LogicalName(name)


def holder_of(session: Session, logical_id: str) -> str | None:
    """The physical id holding the identity now, or None."""
    return session.execute(
        select(BindingRow.physical_id).where(
            BindingRow.logical_id == logical_id, BindingRow.ended_at.is_(None)
        )
    ).scalar_one_or_none()

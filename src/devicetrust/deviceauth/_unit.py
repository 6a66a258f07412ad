"""What the registry says of a unit at authentication time: its lifecycle state and the
logical identity it holds now. One round trip; statements built once (they run on every
authentication).

Never resolves a logical identity from a credential's claim: the name returned is the
registry's, and a name a credential carries is only checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVarTuple

from sqlalchemy import Select, and_, bindparam, select
from sqlalchemy.orm import Session

from devicetrust.deviceauth.errors import IdentityStale
from devicetrust.domain.ids import LogicalName, PhysicalId
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.store.models import (
    BindingRow,
    LogicalIdentityRow,
    PhysicalIdentityRow,
    RetiredNameRow,
)

_Ts = TypeVarTuple("_Ts")

STANDING_COLUMNS = (PhysicalIdentityRow.state, LogicalIdentityRow.id, LogicalIdentityRow.name)


def with_standing(stmt: Select[*_Ts]) -> Select[*_Ts]:
    """Join a statement over `physical_identities` to the unit's open binding and name."""
    return stmt.outerjoin(
        BindingRow,
        and_(BindingRow.physical_id == PhysicalIdentityRow.id, BindingRow.ended_at.is_(None)),
    ).outerjoin(LogicalIdentityRow, LogicalIdentityRow.id == BindingRow.logical_id)


_STANDING = with_standing(select(*STANDING_COLUMNS)).where(
    PhysicalIdentityRow.id == bindparam("pid")
)
_RETIRED = (
    select(RetiredNameRow.id)
    .where(RetiredNameRow.logical_id == bindparam("lid"), RetiredNameRow.name == bindparam("name"))
    .limit(1)
)


@dataclass(frozen=True, slots=True)
class UnitStanding:
    physical_id: PhysicalId
    state: DeviceState
    logical_id: str | None
    logical_name: LogicalName | None

    @classmethod
    def from_columns(
        cls, physical_id: str, state: str, logical_id: str | None, name: str | None
    ) -> UnitStanding:
        return cls(
            PhysicalId(physical_id),
            DeviceState(state),
            logical_id,
            LogicalName(name) if name is not None else None,
        )


def unit_standing(session: Session, physical_id: str) -> UnitStanding | None:
    found = session.execute(_STANDING, {"pid": physical_id}).first()
    if found is None:
        return None
    state, logical_id, name = found
    return UnitStanding.from_columns(physical_id, state, logical_id, name)


def check_claimed_name(session: Session, unit: UnitStanding, claimed: LogicalName) -> None:
    """A credential naming a logical identity (a certificate's SAN) must name the one the
    unit holds now, by its current name or a former one (a rename's re-issued certificate
    may not have reached the device yet). A unit whose identity was transferred or replaced
    away is refused: it must not act as its old logical identity."""
    if unit.logical_name == claimed:
        return
    if unit.logical_id is not None:
        former = session.execute(_RETIRED, {"lid": unit.logical_id, "name": claimed}).first()
        if former is not None:
            return
    raise IdentityStale(
        "the credential names a logical identity the unit does not hold",
        claimed_name=claimed,
        held_name=unit.logical_name,
    )

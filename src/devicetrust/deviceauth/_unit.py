"""What the registry says of a unit at authentication time: its lifecycle state, the
logical identity it holds now, and what its policy limits are kept under (the name of its
enrollment, the change mark of the fleet and that enrollment, and the change mark of the
unit's own scope: `policy.change_mark`). One round trip, joined to whatever else the
authentication reads (a key row, certificate statuses); statements built once (they run on
every authentication).

Never resolves a logical identity from a credential's claim: the name returned is the
registry's, and a name a credential carries is only checked against it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVarTuple, runtime_checkable

from sqlalchemy import Select, and_, bindparam, select
from sqlalchemy.orm import Session

from devicetrust.deviceauth.errors import IdentityStale
from devicetrust.deviceauth.records import AuthLimits, LimitsFor
from devicetrust.domain.ids import LogicalName, PhysicalId
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.policy.change_mark import FLEET_KEY, change_mark, scope_key
from devicetrust.policy.scopes import ScopeKind
from devicetrust.store.models import (
    BindingRow,
    EnrollmentRow,
    LogicalIdentityRow,
    PhysicalIdentityRow,
    RegistrationRow,
    RetiredNameRow,
)

_Ts = TypeVarTuple("_Ts")

STANDING_COLUMNS = (
    PhysicalIdentityRow.state,
    LogicalIdentityRow.id,
    LogicalIdentityRow.name,
    EnrollmentRow.name,
    change_mark(FLEET_KEY, scope_key(ScopeKind.ENROLLMENT, EnrollmentRow.name)),
    change_mark(scope_key(ScopeKind.DEVICE, PhysicalIdentityRow.id)),
)


def with_standing(stmt: Select[*_Ts]) -> Select[*_Ts]:
    """Join a statement over `physical_identities` to the unit's open binding and name and
    to the enrollment that admitted it (for `STANDING_COLUMNS`)."""
    return (
        stmt.outerjoin(
            BindingRow,
            and_(BindingRow.physical_id == PhysicalIdentityRow.id, BindingRow.ended_at.is_(None)),
        )
        .outerjoin(LogicalIdentityRow, LogicalIdentityRow.id == BindingRow.logical_id)
        .outerjoin(RegistrationRow, RegistrationRow.physical_id == PhysicalIdentityRow.id)
        .outerjoin(EnrollmentRow, EnrollmentRow.id == RegistrationRow.enrollment_id)
    )


# A unit's standing on its own (parameter `pid`), for a caller that reads nothing else.
STANDING_BY_ID = with_standing(select(*STANDING_COLUMNS)).where(
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
    enrollment: str | None = None  # the name of the enrollment that admitted it
    # `policy.change_mark` of the fleet and its enrollment, and of the unit's own scope
    # (None: nothing was ever set or relaxed for the unit itself)
    policy_mark: int | None = None
    unit_policy_mark: int | None = None

    @classmethod
    def from_columns(cls, physical_id: str, columns: Sequence[Any]) -> UnitStanding:
        """From `physical_id` and the values of `STANDING_COLUMNS`, in that order."""
        state, logical_id, name, enrollment, policy_mark, unit_policy_mark = columns
        return cls(
            PhysicalId(physical_id),
            DeviceState(state),
            logical_id,
            LogicalName(name) if name is not None else None,
            enrollment,
            policy_mark,
            unit_policy_mark,
        )


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


@runtime_checkable
class StandingLimits(Protocol):
    """A `LimitsFor` that can also answer from a unit's standing, with no read of its own
    (`PolicyLimits`: the standing carries what its cache is checked against)."""

    def for_standing(self, unit: UnitStanding) -> AuthLimits: ...


def standing_limits(limits_for: LimitsFor) -> Callable[[UnitStanding], AuthLimits]:
    """How an authenticator asks for a unit's limits once it has read its standing."""
    if isinstance(limits_for, StandingLimits):
        return limits_for.for_standing
    return lambda unit: limits_for(unit.physical_id)

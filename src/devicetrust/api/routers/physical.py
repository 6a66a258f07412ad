"""Physical identities: register units (one or a batch), read them, move them along their
lifecycle, release them from quarantine, read what they held."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from devicetrust.api.paging import Offset
from devicetrust.api.platform import PlatformDep
from devicetrust.api.schemas import (
    BindingOut,
    HistoryOut,
    PhysicalBatchOut,
    PhysicalOut,
    PhysicalPage,
    ReleaseIn,
    StateChangeIn,
    UnitBatchIn,
    UnitIn,
)
from devicetrust.api.security import requires
from devicetrust.auth import ApiKey, Scope
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.identity import UnitSpec

router = APIRouter(prefix="/v1/physical-identities", tags=["physical identities"])

Reader = Annotated[ApiKey, requires(Scope.IDENTITY_READ)]
Writer = Annotated[ApiKey, requires(Scope.IDENTITY_WRITE)]


def _spec(unit: UnitIn) -> UnitSpec:
    return UnitSpec(
        model=unit.model,
        hardware_serials=dict(unit.hardware_serials),
        manufactured_at=unit.manufactured_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED, summary="Register a manufactured unit")
def register(body: UnitIn, key: Writer, platform: PlatformDep) -> PhysicalOut:
    return PhysicalOut.of(platform.identity.register(_spec(body), actor=key.actor))


@router.post(
    "/batch", status_code=status.HTTP_201_CREATED, summary="Register a batch (all or none)"
)
def register_batch(body: UnitBatchIn, key: Writer, platform: PlatformDep) -> PhysicalBatchOut:
    units = platform.identity.register_batch([_spec(u) for u in body.units], actor=key.actor)
    return PhysicalBatchOut(items=[PhysicalOut.of(u) for u in units])


@router.get("", summary="List units")
def list_units(
    _key: Reader,
    platform: PlatformDep,
    state: DeviceState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> PhysicalPage:
    units = platform.identity.list_physical(state=state, limit=limit, offset=offset)
    return PhysicalPage(items=[PhysicalOut.of(u) for u in units], limit=limit, offset=offset)


@router.get("/{physical_id}", summary="Read a unit")
def get_unit(physical_id: str, _key: Reader, platform: PlatformDep) -> PhysicalOut:
    return PhysicalOut.of(platform.identity.get_physical(physical_id))


@router.get("/{physical_id}/history", summary="Logical identities the unit held, oldest first")
def unit_history(physical_id: str, _key: Reader, platform: PlatformDep) -> HistoryOut:
    bindings = platform.identity.history_of_physical(physical_id)
    return HistoryOut(bindings=[BindingOut.of(b) for b in bindings])


@router.post("/{physical_id}/state", summary="Move a unit to another lifecycle state")
def set_state(
    physical_id: str, body: StateChangeIn, key: Writer, platform: PlatformDep
) -> PhysicalOut:
    unit = platform.identity.set_state(physical_id, body.state, actor=key.actor, reason=body.reason)
    return PhysicalOut.of(unit)


@router.post("/{physical_id}/release", summary="Release a unit from quarantine")
def release(
    physical_id: str, key: Writer, platform: PlatformDep, body: ReleaseIn | None = None
) -> PhysicalOut:
    # The lifecycle picks the target (never straight back to active); the state given to
    # set_state is ignored on release.
    unit = platform.identity.set_state(
        physical_id,
        DeviceState.SUSPENDED,
        actor=key.actor,
        reason=body.reason if body else "",
        release=True,
    )
    return PhysicalOut.of(unit)

"""Logical identities: create, read, update attributes, and the binding operations (bind,
unbind, rename, transfer, replace) with their history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from devicetrust.api.instants import Instant
from devicetrust.api.paging import Offset
from devicetrust.api.platform import PlatformDep
from devicetrust.api.schemas import (
    AttributesIn,
    BindIn,
    BindingOut,
    HistoryOut,
    HolderOut,
    LogicalIn,
    LogicalOut,
    LogicalPage,
    RenameIn,
    ReplaceIn,
    ReplacementOut,
    TransferIn,
    UnbindIn,
)
from devicetrust.api.security import requires
from devicetrust.auth import ApiKey, Scope

router = APIRouter(prefix="/v1/logical-identities", tags=["logical identities"])

Reader = Annotated[ApiKey, requires(Scope.IDENTITY_READ)]
Writer = Annotated[ApiKey, requires(Scope.IDENTITY_WRITE)]


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a logical identity")
def create(body: LogicalIn, key: Writer, platform: PlatformDep) -> LogicalOut:
    identity = platform.identity.create_logical(body.name, body.attributes, actor=key.actor)
    return LogicalOut.of(identity)


@router.get("", summary="List logical identities by name")
def list_identities(
    _key: Reader,
    platform: PlatformDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> LogicalPage:
    found = platform.identity.list_logical(limit=limit, offset=offset)
    return LogicalPage(items=[LogicalOut.of(i) for i in found], limit=limit, offset=offset)


@router.get("/{name}", summary="Read a logical identity (by current or recent former name)")
def get(name: str, _key: Reader, platform: PlatformDep) -> LogicalOut:
    return LogicalOut.of(platform.identity.get_logical(name))


@router.patch("/{name}", summary="Update attributes (null removes one)")
def update_attributes(
    name: str, body: AttributesIn, key: Writer, platform: PlatformDep
) -> LogicalOut:
    identity = platform.identity.update_attributes(name, body.attributes, actor=key.actor)
    return LogicalOut.of(identity)


@router.post("/{name}/bind", summary="Give the identity to a free, live unit")
def bind(name: str, body: BindIn, key: Writer, platform: PlatformDep) -> BindingOut:
    return BindingOut.of(platform.identity.bind(name, body.physical_id, actor=key.actor))


@router.post("/{name}/unbind", summary="Take the identity from its unit")
def unbind(
    name: str, key: Writer, platform: PlatformDep, body: UnbindIn | None = None
) -> BindingOut:
    reason = body.reason if body else UnbindIn().reason
    return BindingOut.of(platform.identity.unbind(name, actor=key.actor, reason=reason))


@router.post("/{name}/rename", summary="Rename; the old name resolves for a grace period")
def rename(name: str, body: RenameIn, key: Writer, platform: PlatformDep) -> LogicalOut:
    return LogicalOut.of(platform.identity.rename(name, body.new_name, actor=key.actor))


@router.post("/{name}/transfer", summary="Move the identity to another live unit")
def transfer(name: str, body: TransferIn, key: Writer, platform: PlatformDep) -> BindingOut:
    return BindingOut.of(platform.identity.transfer(name, body.physical_id, actor=key.actor))


@router.post("/{name}/replace", summary="Replace the holding unit atomically")
def replace(name: str, body: ReplaceIn, key: Writer, platform: PlatformDep) -> ReplacementOut:
    replacement = platform.identity.replace(
        name,
        body.new_physical_id,
        actor=key.actor,
        old_physical_id=body.old_physical_id,
        fate=body.fate,
        reason=body.reason,
    )
    return ReplacementOut.of(replacement)


@router.get(
    "/{name}/history",
    summary="Bindings oldest first, or with `at` the holder at that instant",
    response_model=HistoryOut | HolderOut,
)
def history(
    name: str,
    _key: Reader,
    platform: PlatformDep,
    at: Annotated[Instant | None, Query(description="ISO 8601 instant with offset")] = None,
) -> HistoryOut | HolderOut:
    if at is None:
        bindings = platform.identity.history_of_logical(name)
        return HistoryOut(bindings=[BindingOut.of(b) for b in bindings])
    holder = platform.identity.holder_at(name, at)
    return HolderOut(at=at, holder=BindingOut.of(holder) if holder else None)

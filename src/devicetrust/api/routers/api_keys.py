"""Operator API keys (admin only): create (the token is in that one response), list, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status

from devicetrust.api.platform import PlatformDep
from devicetrust.api.schemas import ApiKeyCreatedOut, ApiKeyIn, ApiKeyList, ApiKeyOut
from devicetrust.api.security import requires
from devicetrust.auth import ApiKey, Scope

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])

Admin = Annotated[ApiKey, requires(Scope.ADMIN)]


@router.post(
    "", status_code=status.HTTP_201_CREATED, summary="Create a key; the token is shown once"
)
def create(body: ApiKeyIn, caller: Admin, platform: PlatformDep) -> ApiKeyCreatedOut:
    key, token = platform.api_keys.create(body.name, body.scopes, actor=caller.actor)
    return ApiKeyCreatedOut(key=ApiKeyOut.of(key), token=token)


@router.get("", summary="List keys (never their secrets)")
def list_keys(_caller: Admin, platform: PlatformDep) -> ApiKeyList:
    return ApiKeyList(items=[ApiKeyOut.of(k) for k in platform.api_keys.list()])


@router.delete("/{key_id}", summary="Revoke a key at once")
def revoke(key_id: str, caller: Admin, platform: PlatformDep) -> ApiKeyOut:
    return ApiKeyOut.of(platform.api_keys.revoke(key_id, actor=caller.actor))

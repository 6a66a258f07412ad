"""Security policy, relaxations and the posture report over HTTP.

    GET   /v1/policies/{scope}                         what a scope sets and resolves to
    PATCH /v1/policies/{scope}                         tighten fields (policy:write)
    GET   /v1/policies/devices/{physical_id}/effective a unit's effective policy + sources
    GET   /v1/policies/relaxations                     list (active unless ?status=)
    POST  /v1/policies/relaxations                     relax, with reason and expiry
    GET   /v1/policies/relaxations/{ref}
    POST  /v1/policies/relaxations/{ref}/revoke        end one early
    GET   /v1/posture[?device=]                        per device or for the fleet

Reads need `policy:read`, changes `policy:write`. Handlers only translate: every check,
write and audit entry is the policy service's. `{scope}` is `fleet`, `enrollment:<name>` or
`device:<physical-id>`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from devicetrust.api.platform import PlatformDep
from devicetrust.api.security import requires
from devicetrust.auth import ApiKey, Scope
from devicetrust.policy import Relaxation, RelaxationStatus
from devicetrust.runtime.container import Platform

router = APIRouter(prefix="/v1/policies", tags=["security policy"])
posture_router = APIRouter(prefix="/v1/posture", tags=["security policy"])

Reader = Annotated[ApiKey, requires(Scope.POLICY_READ)]
Writer = Annotated[ApiKey, requires(Scope.POLICY_WRITE)]
FieldValue = str | int | bool | list[str]
ScopePath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        description="fleet, enrollment:<name> or device:<physical-id>",
        examples=["fleet", "enrollment:line-03"],
    ),
]
# `{ref}` in the path: the relaxation's id (a UUID).
RelaxationId = Annotated[
    str, Path(alias="ref", min_length=1, max_length=64, description="the relaxation's id")
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PolicyChangeIn(_In):
    changes: dict[str, FieldValue] = Field(
        default_factory=dict,
        max_length=32,
        description="field -> value; each at least as strict as the secure baseline",
        examples=[{"max_certificate_lifetime": "12h", "auth_methods": ["mtls"]}],
    )
    unset: list[str] = Field(
        default_factory=list, max_length=32, description="fields to inherit again"
    )


class RelaxIn(_In):
    rule: str = Field(min_length=1, max_length=64, examples=["min_tls_version"])
    value: FieldValue = Field(examples=["1.2"])
    scope: str = Field(default="fleet", min_length=1, max_length=200)
    reason: str = Field(
        default="", max_length=1000, description="why; required (at least 8 characters)"
    )
    expires: str = Field(
        default="",
        max_length=64,
        description="ISO 8601 time with a timezone, or a duration (7d, 12h); at most 90 days",
        examples=["30d", "2026-12-24T00:00:00Z"],
    )


class RevokeIn(_In):
    reason: str = Field(default="", max_length=1000)


class RelaxationOut(BaseModel):
    relaxation_id: str
    rule: str
    value: Any
    scope: str
    reason: str
    status: RelaxationStatus
    created_at: str
    created_by: str
    expires_at: str
    revoked_at: str | None
    revoked_by: str | None
    revoke_reason: str | None

    @classmethod
    def of(cls, relaxation: Relaxation, platform: Platform) -> RelaxationOut:
        """As of the platform clock's now (the status is derived, never stored)."""
        return cls.model_validate(relaxation.to_json(platform.policy.clock.now()))


class RelaxationList(BaseModel):
    items: list[RelaxationOut]


@router.get("/relaxations", summary="Relaxations, newest first (active unless ?status=)")
def list_relaxations(
    _key: Reader,
    platform: PlatformDep,
    relaxation_status: Annotated[RelaxationStatus | None, Query(alias="status")] = (
        RelaxationStatus.ACTIVE
    ),
    scope: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> RelaxationList:
    found = platform.policy.relaxations(
        scope=scope, status=relaxation_status, limit=limit, offset=offset
    )
    return RelaxationList(items=[RelaxationOut.of(r, platform) for r in found])


@router.post(
    "/relaxations",
    status_code=status.HTTP_201_CREATED,
    summary="Relax one field past the baseline, with a reason and an expiry (audited)",
)
def relax(body: RelaxIn, key: Writer, platform: PlatformDep) -> RelaxationOut:
    relaxation = platform.policy.relax(
        body.rule,
        body.value,
        body.scope,
        reason=body.reason,
        expires=body.expires,
        actor=key.actor,
    )
    return RelaxationOut.of(relaxation, platform)


@router.get("/relaxations/{ref}", summary="One relaxation")
def get_relaxation(
    relaxation_id: RelaxationId, _key: Reader, platform: PlatformDep
) -> RelaxationOut:
    return RelaxationOut.of(platform.policy.get_relaxation(relaxation_id), platform)


@router.post("/relaxations/{ref}/revoke", summary="End a relaxation early")
def revoke_relaxation(
    relaxation_id: RelaxationId, body: RevokeIn, key: Writer, platform: PlatformDep
) -> RelaxationOut:
    revoked = platform.policy.revoke_relaxation(relaxation_id, actor=key.actor, reason=body.reason)
    return RelaxationOut.of(revoked, platform)


@router.get(
    "/devices/{physical_id}/effective",
    summary="A unit's effective policy, where each field came from, relaxations in force",
)
def effective(
    physical_id: Annotated[str, Path(min_length=1, max_length=64)],
    _key: Reader,
    platform: PlatformDep,
) -> dict[str, Any]:
    return platform.policy.effective(physical_id).to_json()


# Declared last: `{scope:path}` would otherwise take "relaxations" or "devices/..." too.
@router.get("/{scope:path}", summary="What a scope sets and what it resolves to")
def show(scope: ScopePath, _key: Reader, platform: PlatformDep) -> dict[str, Any]:
    return platform.policy.show(scope).to_json()


@router.patch(
    "/{scope:path}",
    summary="Set fields at a scope (at least as strict as the baseline) or unset them",
)
def change(
    scope: ScopePath, body: PolicyChangeIn, key: Writer, platform: PlatformDep
) -> dict[str, Any]:
    return platform.policy.set(scope, body.changes, unset=body.unset, actor=key.actor).to_json()


@posture_router.get("", summary="Posture: which security measures hold, per device or fleet")
def posture(
    _key: Reader,
    platform: PlatformDep,
    device: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    max_devices: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    if device is not None:
        return platform.policy.posture.device(device).to_json()
    return platform.policy.posture.fleet(max_devices=max_devices).to_json()

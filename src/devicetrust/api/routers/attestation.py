"""Measured boot over HTTP: golden measurements and the units' verified boot attestations.

    GET  /v1/attestation/golden[?include_revoked=]      list (active ones unless asked)
    POST /v1/attestation/golden                         add: PCR values or from a reference unit
    GET  /v1/attestation/golden/{name}                  one, active or revoked
    POST /v1/attestation/golden/{name}/revoke           no longer accepted (reason required)
    GET  /v1/attestation/devices/{physical_id}          a unit's boot attestations, newest first

Golden measurements decide which boots the policy's `measured_boot_required` admits, so they
are security policy: reads need `policy:read`, changes `policy:write`. Handlers only
translate: every check, write and audit entry is the attestation service's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from devicetrust.api.attestation_schemas import (
    BootAttestationList,
    BootAttestationOut,
    GoldenIn,
    GoldenList,
    GoldenOut,
    GoldenRevokeIn,
)
from devicetrust.api.platform import PlatformDep
from devicetrust.api.security import requires
from devicetrust.attestation.rules import MAX_NAME
from devicetrust.attestation.service import MAX_HISTORY
from devicetrust.auth import ApiKey, Scope
from devicetrust.domain.errors import NotFound
from devicetrust.domain.ids import parse_physical_id

router = APIRouter(prefix="/v1/attestation", tags=["measured boot"])

Reader = Annotated[ApiKey, requires(Scope.POLICY_READ)]
Writer = Annotated[ApiKey, requires(Scope.POLICY_WRITE)]
GoldenName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_NAME,
        description="the golden measurement's name",
        examples=["arm-fw-2.4.1"],
    ),
]
UnitPath = Annotated[
    str,
    Path(min_length=1, max_length=64, examples=["c2c38155-b0d2-48b6-82fd-22fe3b316224"]),
]


@router.get("/golden", summary="Golden measurements by name (active unless ?include_revoked)")
def list_golden(
    _key: Reader,
    platform: PlatformDep,
    include_revoked: Annotated[bool, Query()] = False,
) -> GoldenList:
    found = platform.attestation.goldens(include_revoked=include_revoked)
    return GoldenList(items=[GoldenOut.of(g) for g in found])


@router.post(
    "/golden",
    status_code=status.HTTP_201_CREATED,
    summary="Add a golden measurement: PCR values, or a reference unit's last quote (audited)",
)
def add_golden(body: GoldenIn, key: Writer, platform: PlatformDep) -> GoldenOut:
    service = platform.attestation
    if body.from_unit is not None:
        golden = service.golden_from_unit(
            body.name, body.from_unit, note=body.note, actor=key.actor
        )
    else:
        golden = service.add_golden(body.name, body.pcrs or {}, note=body.note, actor=key.actor)
    return GoldenOut.of(golden)


@router.post(
    "/golden/{name}/revoke",
    summary="Revoke a golden measurement: boots matching only it are unknown from now on",
)
def revoke_golden(
    name: GoldenName, body: GoldenRevokeIn, key: Writer, platform: PlatformDep
) -> GoldenOut:
    revoked = platform.attestation.revoke_golden(name, reason=body.reason, actor=key.actor)
    return GoldenOut.of(revoked)


@router.get("/golden/{name}", summary="One golden measurement, active or revoked")
def get_golden(name: GoldenName, _key: Reader, platform: PlatformDep) -> GoldenOut:
    for golden in platform.attestation.goldens(include_revoked=True):
        if golden.name == name:
            return GoldenOut.of(golden)
    raise NotFound("attestation.golden_not_found", f"no golden measurement {name}")


@router.get(
    "/devices/{physical_id}",
    summary="A unit's verified boot attestations and their verdicts, newest first",
)
def unit_attestations(
    physical_id: UnitPath,
    _key: Reader,
    platform: PlatformDep,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY)] = 50,
) -> BootAttestationList:
    history = platform.attestation.history(physical_id, limit=limit)
    return BootAttestationList(
        physical_id=parse_physical_id(physical_id),
        items=[BootAttestationOut.of(a) for a in history],
    )

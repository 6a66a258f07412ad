"""Provisioning over HTTPS: the device side (challenge, register, status) and the operator
side (enrollments, the pending queue, approvals).

Device routes are `allow_insecure`: a device has no operator credential; it authenticates by
the attestation evidence in the request (a token MACed with its key, a signature by its birth
key, a TPM credential activation), which the provisioning service verifies, rate limits and
audits. Refusals are problem+json; a rate-limited device gets 429 with `Retry-After`, a
pending one 202 with `Retry-After`. Operator routes need `provisioning:read` /
`provisioning:write` (enrollments decide who gets a logical identity). These scopes are their
own: `identity:*` does not imply them, so a key made for renaming and binding cannot also
enroll units or approve pending ones (`admin` still implies every scope).

Handlers only translate: every check, write and audit entry is the service's.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from devicetrust.api import problems
from devicetrust.api.paging import Offset
from devicetrust.api.platform import PlatformDep
from devicetrust.api.provisioning_schemas import (
    ApproveIn,
    ChallengeIn,
    ChallengeOut,
    EnrollmentOut,
    EnrollmentPage,
    EnrollmentPatchIn,
    GroupIn,
    IndividualIn,
    KeyOnceOut,
    ProvisionedOut,
    RegisterIn,
    RegistrationOut,
    RegistrationPage,
    StatusOut,
)
from devicetrust.api.security import allow_insecure, requires
from devicetrust.auth import ApiKey, Scope
from devicetrust.domain.errors import InvalidInput
from devicetrust.domain.ids import PhysicalId
from devicetrust.provisioning import (
    AttestationKind,
    KeyShown,
    RateLimited,
    RegistrationRequest,
    RegistrationStatus,
)
from devicetrust.provisioning.symmetric import b64url

DEVICE_REASON = (
    "devices hold no operator credential: they authenticate by the attestation evidence in "
    "the request, which the provisioning service verifies, rate-limits and audits"
)
STATUS_REASON = "a device polls its registration status; the answer names no identity"

device_router = APIRouter(prefix="/v1/provisioning", tags=["provisioning (devices)"])
router = APIRouter(prefix="/v1/enrollments", tags=["enrollments"])

Reader = Annotated[ApiKey, requires(Scope.PROVISIONING_READ)]
Writer = Annotated[ApiKey, requires(Scope.PROVISIONING_WRITE)]


def _source(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _rate_limited(exc: RateLimited) -> problems.ProblemResponse:
    return problems.problem(
        429, exc.code, exc.message, headers={"Retry-After": str(exc.retry_after)}
    )


@device_router.post(
    "/challenge",
    status_code=status.HTTP_201_CREATED,
    summary="Get a single-use challenge (x509 nonce, TPM credential)",
    dependencies=[allow_insecure(DEVICE_REASON)],
    response_model=ChallengeOut,
)
def challenge(body: ChallengeIn, request: Request, platform: PlatformDep) -> object:
    try:
        issued = platform.provisioning.challenge(
            body.physical_id, body.method, evidence=body.evidence, source=_source(request)
        )
    except RateLimited as exc:
        return _rate_limited(exc)
    return ChallengeOut.of(issued)


@device_router.post(
    "/register",
    summary="Register: attest, get a logical identity and an operational certificate",
    dependencies=[allow_insecure(DEVICE_REASON)],
    response_model=ProvisionedOut,
    responses={202: {"model": ProvisionedOut, "description": "pending operator approval"}},
)
def register(
    body: RegisterIn, request: Request, response: Response, platform: PlatformDep
) -> object:
    attempt = RegistrationRequest(
        physical_id=PhysicalId(body.physical_id),
        method=AttestationKind(body.method),
        csr=body.csr.encode("utf-8"),
        evidence=body.evidence,
        source=_source(request),
    )
    try:
        result = platform.provisioning.provision(attempt)
    except RateLimited as exc:
        return _rate_limited(exc)
    if result.status is RegistrationStatus.PENDING:
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Retry-After"] = str(result.retry_after or 30)
    return ProvisionedOut.of(result)


@device_router.get(
    "/status/{registration}",
    summary="Poll a registration's status",
    dependencies=[allow_insecure(STATUS_REASON)],
)
def registration_status(registration: str, response: Response, platform: PlatformDep) -> StatusOut:
    found = platform.provisioning.registration(registration[:64])
    retry = 30 if found.status is not RegistrationStatus.ASSIGNED else None
    if retry is not None:
        response.headers["Retry-After"] = str(retry)
    return StatusOut(physical_id=found.physical_id, status=found.status, retry_after=retry)


# ---- operator ------------------------------------------------------------------------------


def _b64(value: str | None, field: str) -> bytes | None:
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise InvalidInput("request.invalid_base64", f"{field} is not base64") from exc


def _key_once(shown: KeyShown) -> KeyOnceOut:
    try:
        return KeyOnceOut(enrollment=EnrollmentOut.of(shown.enrollment), key=b64url(shown.key))
    finally:
        shown.key[:] = bytes(len(shown.key))


@router.post(
    "/individual",
    status_code=status.HTTP_201_CREATED,
    summary="Enroll one unit (x509 fingerprint, TPM EK, or a per-device key shown once)",
    response_model=EnrollmentOut | KeyOnceOut,
)
def create_individual(body: IndividualIn, key: Writer, platform: PlatformDep) -> object:
    enrollments = platform.provisioning.enrollments
    if body.attestation is AttestationKind.SYMMETRIC_KEY:
        return _key_once(
            enrollments.create_individual_key(
                body.physical_id,
                body.allocation.value(),
                actor=key.actor,
                name=body.name,
                expires_at=body.expires_at,
                replaces=body.replaces,
            )
        )
    return EnrollmentOut.of(
        enrollments.create_individual(
            body.physical_id,
            body.attestation,
            body.allocation.value(),
            actor=key.actor,
            name=body.name,
            key_fingerprint=body.key_fingerprint,
            tpm_ek_public=_b64(body.tpm_ek_public, "tpm_ek_public"),
            tpm_ek_certificate=_b64(body.tpm_ek_certificate, "tpm_ek_certificate"),
            expires_at=body.expires_at,
            replaces=body.replaces,
            require_hardware_key=body.require_hardware_key,
        )
    )


@router.post(
    "/groups",
    status_code=status.HTTP_201_CREATED,
    summary="Enroll a group (x509: a CA; symmetric-key: a group key shown once)",
    response_model=EnrollmentOut | KeyOnceOut,
)
def create_group(body: GroupIn, key: Writer, platform: PlatformDep) -> object:
    enrollments = platform.provisioning.enrollments
    if body.attestation is AttestationKind.SYMMETRIC_KEY:
        if body.ca_id is not None or body.require_hardware_key:
            raise InvalidInput(
                "provisioning.invalid_enrollment", "a symmetric-key group names no CA"
            )
        return _key_once(
            enrollments.create_symmetric_group(
                body.name, body.allocation.value(), actor=key.actor, expires_at=body.expires_at
            )
        )
    if body.attestation is not AttestationKind.X509 or body.ca_id is None:
        raise InvalidInput(
            "provisioning.invalid_enrollment", "groups are x509 (with ca_id) or symmetric-key"
        )
    return EnrollmentOut.of(
        enrollments.create_x509_group(
            body.name,
            body.ca_id,
            body.allocation.value(),
            actor=key.actor,
            expires_at=body.expires_at,
            require_hardware_key=body.require_hardware_key,
        )
    )


@router.get("", summary="List enrollments")
def list_enrollments(
    _key: Reader,
    platform: PlatformDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> EnrollmentPage:
    items = platform.provisioning.enrollments.list_all(limit=limit, offset=offset)
    return EnrollmentPage(items=[EnrollmentOut.of(e) for e in items], limit=limit, offset=offset)


@router.get("/pending", summary="Units waiting for a manual allocation")
def list_pending(
    _key: Reader,
    platform: PlatformDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> RegistrationPage:
    items = platform.provisioning.list_pending(limit=limit, offset=offset)
    return RegistrationPage(
        items=[RegistrationOut.of(r) for r in items], limit=limit, offset=offset
    )


@router.post("/pending/{physical_id}/approve", summary="Approve a pending unit with a name")
def approve(
    physical_id: str, body: ApproveIn, key: Writer, platform: PlatformDep
) -> RegistrationOut:
    return RegistrationOut.of(
        platform.provisioning.approve(physical_id[:64], body.name, actor=key.actor)
    )


@router.get("/{ref}", summary="Read an enrollment (by id or name)")
def get_enrollment(ref: str, _key: Reader, platform: PlatformDep) -> EnrollmentOut:
    return EnrollmentOut.of(platform.provisioning.enrollments.get(ref[:128]))


@router.patch("/{ref}", summary="Enable/disable, set expiry, allocation or replacement")
def patch_enrollment(
    ref: str, body: EnrollmentPatchIn, key: Writer, platform: PlatformDep
) -> EnrollmentOut:
    enrollments = platform.provisioning.enrollments
    current = enrollments.get(ref[:128])
    target = current.enrollment_id
    if body.allocation is not None:
        current = enrollments.set_allocation(target, body.allocation.value(), actor=key.actor)
    if body.expires_at is not None or body.clear_expiry:
        current = enrollments.set_expiry(target, body.expires_at, actor=key.actor)
    if body.replaces is not None:
        current = enrollments.set_replaces(target, body.replaces, actor=key.actor)
    if body.enabled is not None:
        current = enrollments.set_enabled(target, body.enabled, actor=key.actor)
    return EnrollmentOut.of(current)

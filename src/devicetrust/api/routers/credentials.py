"""Device credentials over HTTP: the operator side (HMAC token key versions, JWT public keys)
and the device side (`GET /v1/device/me`, the unit authenticated by its own credential).

    GET  /v1/devices/{physical_id}/token-keys                    list versions (credential:read)
    POST /v1/devices/{physical_id}/token-keys                    rotate: a new key, shown once
    POST /v1/devices/{physical_id}/token-keys/{version}/revoke   refuse a version at once
    GET  /v1/devices/{physical_id}/public-keys                   list JWT keys (credential:read)
    POST /v1/devices/{physical_id}/public-keys                   register a P-256/Ed25519 key
    POST /v1/public-keys/{key_id}/revoke                         revoke a JWT key
    GET  /v1/device/me                                           the calling device (its own
                                                                 certificate, JWT or HMAC token)

Changes need `credential:write`, reads `credential:read` (`admin` implies both). A rotation's
answer is the only place its key ever appears: `Cache-Control: no-store`, and the key buffer
is zeroed once serialised. Handlers only translate: every check, write and audit entry is
the device-authentication service's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from devicetrust.api.device_auth import DEVICE_AUTH_REASON, DeviceDep
from devicetrust.api.instants import Instant
from devicetrust.api.platform import PlatformDep
from devicetrust.api.security import allow_insecure, requires
from devicetrust.auth import ApiKey, Scope
from devicetrust.deviceauth import DevicePublicKey, TokenKeyShown, TokenKeyVersion
from devicetrust.policy import PolicyField, parse_duration, value_json
from devicetrust.provisioning.symmetric import b64url

router = APIRouter(tags=["device credentials"])
device_router = APIRouter(prefix="/v1/device", tags=["devices"])

Reader = Annotated[ApiKey, requires(Scope.CREDENTIAL_READ)]
Writer = Annotated[ApiKey, requires(Scope.CREDENTIAL_WRITE)]
PhysicalIdPath = Annotated[str, Path(min_length=1, max_length=64, description="the unit's id")]
VersionPath = Annotated[int, Path(ge=1, le=2_147_483_647, description="the key version")]
KeyIdPath = Annotated[
    str, Path(min_length=1, max_length=64, description="SHA-256 (hex) of the key's SPKI")
]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_SUMMARY_FIELDS = (
    PolicyField.AUTH_METHODS,
    PolicyField.MAX_TOKEN_LIFETIME,
    PolicyField.MAX_CERTIFICATE_LIFETIME,
)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RotateIn(_In):
    overlap: str | int = Field(
        default="1d",
        description="how long the versions accepted so far keep working (0 to 30 days): "
        "a duration such as 1d, 12h, PT6H, or seconds",
        examples=["1d"],
    )


class PublicKeyIn(_In):
    public_key_pem: str = Field(
        min_length=1, max_length=4096, description="P-256 or Ed25519 SubjectPublicKeyInfo, PEM"
    )
    expires_at: Instant | None = Field(
        default=None, description="when the key stops being accepted (with a timezone)"
    )


class TokenKeyVersionOut(BaseModel):
    physical_id: str
    version: int
    origin: str
    created_at: datetime
    retires_at: datetime | None
    revoked_at: datetime | None
    destroyed: bool
    accepted: bool = Field(description="tokens naming this version are accepted now")

    @classmethod
    def of(cls, version: TokenKeyVersion, now: datetime) -> TokenKeyVersionOut:
        return cls(**version.to_json(), accepted=version.accepted_at(now))


class TokenKeyOnceOut(BaseModel):
    """A new token key version and its key (base64url): shown this once only."""

    version: TokenKeyVersionOut
    key: str = Field(description="the 32-byte key, base64url without padding")


class TokenKeyPage(BaseModel):
    items: list[TokenKeyVersionOut]


class PublicKeyOut(BaseModel):
    key_id: str
    physical_id: str
    algorithm: str
    public_key_pem: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: DevicePublicKey) -> PublicKeyOut:
        return cls(**key.to_json())


class PublicKeyPage(BaseModel):
    items: list[PublicKeyOut]


class PolicySummaryOut(BaseModel):
    auth_methods: list[str] = Field(description="the methods the unit may authenticate with")
    max_token_lifetime: int = Field(description="seconds")
    max_certificate_lifetime: int = Field(description="seconds")


class DeviceMeOut(BaseModel):
    physical_id: str
    logical_name: str | None
    method: str
    credential_id: str
    expires_at: datetime = Field(description="when the credential used stops being accepted")
    policy: PolicySummaryOut


def _key_once(shown: TokenKeyShown, now: datetime) -> TokenKeyOnceOut:
    with shown:  # zeroes the key buffer whatever happens
        return TokenKeyOnceOut(
            version=TokenKeyVersionOut.of(shown.version, now), key=b64url(shown.key)
        )


def _overlap(value: str | int) -> timedelta:
    return parse_duration(value, what="rotation overlap", allow_zero=True)


@router.get(
    "/v1/devices/{physical_id}/token-keys",
    summary="List a unit's HMAC token key versions (never the keys)",
)
def list_token_keys(
    physical_id: PhysicalIdPath, _key: Reader, platform: PlatformDep
) -> TokenKeyPage:
    unit = platform.identity.get_physical(physical_id)
    now = platform.clock.now()
    versions = platform.device_auth.token_keys.list_versions(unit.physical_id)
    return TokenKeyPage(items=[TokenKeyVersionOut.of(v, now) for v in versions])


@router.post(
    "/v1/devices/{physical_id}/token-keys",
    status_code=status.HTTP_201_CREATED,
    summary="Rotate: a new token key version; the key is in this answer only",
)
def rotate_token_key(
    physical_id: PhysicalIdPath,
    key: Writer,
    platform: PlatformDep,
    response: Response,
    body: RotateIn | None = None,
) -> TokenKeyOnceOut:
    overlap = _overlap(body.overlap if body is not None else "1d")
    shown = platform.device_auth.token_keys.rotate(physical_id, actor=key.actor, overlap=overlap)
    response.headers.update(NO_STORE)
    return _key_once(shown, platform.clock.now())


@router.post(
    "/v1/devices/{physical_id}/token-keys/{version}/revoke",
    summary="Revoke a token key version at once (e.g. a leaked key)",
)
def revoke_token_key(
    physical_id: PhysicalIdPath, version: VersionPath, key: Writer, platform: PlatformDep
) -> TokenKeyVersionOut:
    revoked = platform.device_auth.token_keys.revoke(physical_id, version, actor=key.actor)
    return TokenKeyVersionOut.of(revoked, platform.clock.now())


@router.get(
    "/v1/devices/{physical_id}/public-keys", summary="List the public keys a unit signs JWTs with"
)
def list_public_keys(
    physical_id: PhysicalIdPath, _key: Reader, platform: PlatformDep
) -> PublicKeyPage:
    unit = platform.identity.get_physical(physical_id)
    keys = platform.device_auth.public_keys.list_for(unit.physical_id)
    return PublicKeyPage(items=[PublicKeyOut.of(k) for k in keys])


@router.post(
    "/v1/devices/{physical_id}/public-keys",
    status_code=status.HTTP_201_CREATED,
    summary="Register a P-256 or Ed25519 public key for the unit's JWTs",
)
def register_public_key(
    physical_id: PhysicalIdPath, body: PublicKeyIn, key: Writer, platform: PlatformDep
) -> PublicKeyOut:
    registered = platform.device_auth.public_keys.register(
        physical_id, body.public_key_pem, actor=key.actor, expires_at=body.expires_at
    )
    return PublicKeyOut.of(registered)


@router.post("/v1/public-keys/{key_id}/revoke", summary="Revoke a registered public key")
def revoke_public_key(key_id: KeyIdPath, key: Writer, platform: PlatformDep) -> PublicKeyOut:
    return PublicKeyOut.of(platform.device_auth.public_keys.revoke(key_id, actor=key.actor))


@device_router.get(
    "/me",
    summary="The calling device: its identity, credential and effective policy",
    dependencies=[allow_insecure(DEVICE_AUTH_REASON)],
)
def me(device: DeviceDep, platform: PlatformDep) -> DeviceMeOut:
    policy = platform.policy.effective(device.physical_id).policy
    summary: dict[str, Any] = {f.value: value_json(f, policy.value(f)) for f in _SUMMARY_FIELDS}
    return DeviceMeOut(
        physical_id=device.physical_id,
        logical_name=device.logical_name,
        method=device.method.value,
        credential_id=device.credential_id,
        expires_at=device.expires_at,
        policy=PolicySummaryOut(**summary),
    )

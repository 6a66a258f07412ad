"""Plain values of device authentication: who was authenticated (`AuthenticatedDevice`), the
limits a unit authenticates under (`AuthLimits`), and read-only views of its credentials.

None of them ever holds a clear key, except `TokenKeyShown` (returned once by the service
that drew the key; the caller zeroes it).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from devicetrust.deviceauth.errors import InvalidLimits
from devicetrust.domain.ids import LogicalName, PhysicalId


class AuthMethod(enum.StrEnum):
    MTLS = "mtls"  # a client certificate chain (TLS handshake)
    HMAC_TOKEN = "hmac-token"  # noqa: S105 - SAS-like token MACed with the unit's symmetric key
    JWT = "jwt"  # ES256/EdDSA JWT signed with the unit's own private key


class JwtAlgorithm(enum.StrEnum):
    """The only JWS algorithms a device token may use (RFC 7518 §3.4, RFC 8037 §3.1)."""

    ES256 = "ES256"  # ECDSA P-256 with SHA-256, signature r||s (IEEE P1363)
    EDDSA = "EdDSA"  # Ed25519


@dataclass(frozen=True, slots=True)
class AuthenticatedDevice:
    """A unit whose credential passed every check, at `authenticated_at`.

    `logical_name` is the logical identity the unit holds now in the registry (never one a
    credential claims); `credential_id` names the credential that proved it: the certificate
    serial (hex), the token key version, or the JWT key id / certificate serial.
    """

    physical_id: PhysicalId
    logical_name: LogicalName | None
    method: AuthMethod
    credential_id: str
    expires_at: datetime  # when the credential stops being accepted (cert notAfter, token exp)
    authenticated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "physical_id": self.physical_id,
            "logical_name": self.logical_name,
            "method": self.method.value,
            "credential_id": self.credential_id,
            "expires_at": self.expires_at.isoformat(),
            "authenticated_at": self.authenticated_at.isoformat(),
        }


# Bounds no per-unit limit may leave: a token living a day is no longer short-lived, and a
# skew past 15 minutes means the device has no usable clock (use mTLS or fix NTP instead).
MAX_TOKEN_LIFETIME = timedelta(hours=24)
MAX_CLOCK_SKEW = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class AuthLimits:
    """How a unit may authenticate. Fail closed: an empty `methods` admits nothing."""

    methods: frozenset[AuthMethod] = frozenset(AuthMethod)
    max_token_lifetime: timedelta = timedelta(hours=1)
    clock_skew: timedelta = timedelta(minutes=2)
    jwt_algorithms: frozenset[JwtAlgorithm] = frozenset(JwtAlgorithm)
    # Single-use HMAC tokens: a token without a nonce is refused (JWTs always carry a jti).
    require_nonce: bool = False
    # The source addresses a unit may authenticate from; None admits any (and so does a
    # tuple holding both 0.0.0.0/0 and ::/0). An entry point that passes no source skips it.
    allowed_networks: tuple[IPv4Network | IPv6Network, ...] | None = None

    def __post_init__(self) -> None:
        if not all(isinstance(m, AuthMethod) for m in self.methods):
            raise InvalidLimits("methods are AuthMethod values")
        if not all(isinstance(a, JwtAlgorithm) for a in self.jwt_algorithms):
            raise InvalidLimits("jwt_algorithms are JwtAlgorithm values (ES256, EdDSA)")
        if not timedelta(seconds=1) <= self.max_token_lifetime <= MAX_TOKEN_LIFETIME:
            raise InvalidLimits(f"max_token_lifetime is 1 s to {MAX_TOKEN_LIFETIME}")
        if not timedelta(0) <= self.clock_skew <= MAX_CLOCK_SKEW:
            raise InvalidLimits(f"clock_skew is 0 to {MAX_CLOCK_SKEW}")


DEFAULT_LIMITS = AuthLimits()

LimitsFor = Callable[[PhysicalId], AuthLimits]


def default_limits(physical_id: PhysicalId) -> AuthLimits:
    """The limits every unit gets until a security policy supplies its own."""
    return DEFAULT_LIMITS


class TokenKeyOrigin(enum.StrEnum):
    GENERATED = "generated"  # drawn by the service from the CSPRNG, shown once
    GIVEN = "given"  # supplied by the operator (e.g. flashed at the factory)
    ENROLLMENT = "enrollment"  # the unit's symmetric-key enrollment key (individual or derived)


@dataclass(frozen=True, slots=True)
class TokenKeyVersion:
    """One version of a unit's HMAC token key, without the key."""

    physical_id: PhysicalId
    version: int
    origin: TokenKeyOrigin
    created_at: datetime
    retires_at: datetime | None
    revoked_at: datetime | None
    destroyed: bool  # the sealed key was erased (retired or revoked, then purged)

    def accepted_at(self, at: datetime) -> bool:
        return (
            self.revoked_at is None
            and not self.destroyed
            and (self.retires_at is None or at < self.retires_at)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "physical_id": self.physical_id,
            "version": self.version,
            "origin": self.origin.value,
            "created_at": self.created_at.isoformat(),
            "retires_at": self.retires_at.isoformat() if self.retires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "destroyed": self.destroyed,
        }


@dataclass(slots=True)
class TokenKeyShown:
    """A token key just created: shown once to the operator, then zeroed (`close`)."""

    version: TokenKeyVersion
    key: bytearray = field(repr=False)

    def close(self) -> None:
        self.key[:] = bytes(len(self.key))

    def __enter__(self) -> TokenKeyShown:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class DevicePublicKey:
    """A public key registered for a unit's JWTs; `key_id` is the SHA-256 (hex) of its
    SubjectPublicKeyInfo, the `kid` a token names."""

    key_id: str
    physical_id: PhysicalId
    algorithm: JwtAlgorithm
    public_key_pem: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "physical_id": self.physical_id,
            "algorithm": self.algorithm.value,
            "public_key_pem": self.public_key_pem,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }

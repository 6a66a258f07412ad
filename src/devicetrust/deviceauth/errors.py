"""Why a device was refused: one typed error per reason, each with a stable `auth.*` code.

    DeviceTrustError
    +-- Unauthorized (401)                      the credential did not prove the identity
    |   +-- CredentialRefused   auth.credential_refused   (base of the 401 refusals)
    |       +-- TokenMalformed        auth.token_malformed        not the wire format, too long
    |       +-- TokenInvalid          auth.token_invalid          MAC or signature does not verify
    |       +-- TokenExpired          auth.token_expired          past exp beyond the clock skew
    |       +-- TokenNotYetValid      auth.token_not_yet_valid    iat/nbf ahead beyond the skew
    |       +-- TokenLifetimeExceeded auth.token_lifetime_exceeded valid for longer than allowed
    |       +-- TokenReplayed         auth.token_replayed         nonce or jti already used
    |       +-- TokenWrongAudience    auth.token_wrong_audience   for another resource/audience
    |       +-- TokenWrongSubject     auth.token_wrong_subject    JWT sub is not the key's unit
    |       +-- NonceRequired         auth.nonce_required         limits demand single-use tokens
    |       +-- AlgorithmRefused      auth.algorithm_refused      alg none, HS*, or not allowed
    |       +-- KeyUnknown            auth.key_unknown            no such key (version, kid)
    |       +-- KeyRevoked            auth.key_revoked            the key was revoked
    |       +-- KeyRetired            auth.key_retired            rotated out, overlap is over
    |       +-- IdentityStale         auth.identity_stale         names a logical identity the
    |       |                                                     unit no longer holds
    |       +-- CertificateNotAccepted auth.cert_*                the chain verifier's code
    +-- AuthRateLimited (429) auth.rate_limited    too many failures from one source address
    +-- Forbidden (403)                         the credential is good, the unit may not connect
        +-- DeviceForbidden     auth.device_forbidden     (base of the 403 refusals)
            +-- MethodNotAllowed      auth.method_not_allowed     method off in the unit's limits
            +-- UnitSuspended         auth.unit_suspended
            +-- UnitQuarantined       auth.unit_quarantined
            +-- UnitDecommissioned    auth.unit_decommissioned
            +-- UnitUnknown           auth.unit_unknown           no such physical identity
            +-- NetworkNotAllowed     auth.network_not_allowed    source address outside the
                                                                  unit's allowed networks

Every refusal is an `AuthRefused`, so an entry point catches one type. `code`, `message` and
`details` are precise, for logs and audit; none of them ever holds a key, a MAC, a signature
or a whole token. What the remote device is told is `PUBLIC_MESSAGE`, the same for every
reason (no oracle: which check failed, whether an id or key version exists). A 403 is only
raised after the credential has been proven, so its status tells nothing to a party without
the key.
"""

from __future__ import annotations

from typing import Any, ClassVar

from devicetrust.domain.errors import (
    Conflict,
    DeviceTrustError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
)

PUBLIC_MESSAGE = "device authentication failed"


class AuthRefused(DeviceTrustError):
    """Base of every device-authentication refusal (never raised itself)."""

    CODE: ClassVar[str] = "auth.refused"
    PUBLIC_MESSAGE: ClassVar[str] = PUBLIC_MESSAGE

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)

    def public_problem(self) -> tuple[int, str]:
        """(HTTP status, message) an entry point may show the device."""
        return self.status, self.PUBLIC_MESSAGE


class CredentialRefused(AuthRefused, Unauthorized):
    CODE: ClassVar[str] = "auth.credential_refused"


class TokenMalformed(CredentialRefused):
    CODE: ClassVar[str] = "auth.token_malformed"


class TokenInvalid(CredentialRefused):
    CODE: ClassVar[str] = "auth.token_invalid"


class TokenExpired(CredentialRefused):
    CODE: ClassVar[str] = "auth.token_expired"


class TokenNotYetValid(CredentialRefused):
    CODE: ClassVar[str] = "auth.token_not_yet_valid"


class TokenLifetimeExceeded(CredentialRefused):
    CODE: ClassVar[str] = "auth.token_lifetime_exceeded"


class TokenReplayed(CredentialRefused):
    CODE: ClassVar[str] = "auth.token_replayed"


class TokenWrongAudience(CredentialRefused):
    CODE: ClassVar[str] = "auth.token_wrong_audience"


class TokenWrongSubject(CredentialRefused):
    CODE: ClassVar[str] = "auth.token_wrong_subject"


class NonceRequired(CredentialRefused):
    CODE: ClassVar[str] = "auth.nonce_required"


class AlgorithmRefused(CredentialRefused):
    CODE: ClassVar[str] = "auth.algorithm_refused"


class KeyUnknown(CredentialRefused):
    CODE: ClassVar[str] = "auth.key_unknown"


class KeyRevoked(CredentialRefused):
    CODE: ClassVar[str] = "auth.key_revoked"


class KeyRetired(CredentialRefused):
    CODE: ClassVar[str] = "auth.key_retired"


class IdentityStale(CredentialRefused):
    CODE: ClassVar[str] = "auth.identity_stale"


class CertificateNotAccepted(CredentialRefused):
    """The chain verifier's refusal (`pki.verify`), keeping its precise `auth.cert_*` code."""

    CODE: ClassVar[str] = "auth.cert_refused"

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code


class AuthRateLimited(AuthRefused):
    """Too many failed authentications from one source: refused before any work."""

    status = 429
    exit_code = 7
    CODE: ClassVar[str] = "auth.rate_limited"
    PUBLIC_MESSAGE: ClassVar[str] = "too many failed authentications; retry later"

    def __init__(self, message: str, *, retry_after: int, **details: Any) -> None:
        super().__init__(message, retry_after=retry_after, **details)
        self.retry_after = retry_after


class DeviceForbidden(AuthRefused, Forbidden):
    CODE: ClassVar[str] = "auth.device_forbidden"


class MethodNotAllowed(DeviceForbidden):
    CODE: ClassVar[str] = "auth.method_not_allowed"


class UnitSuspended(DeviceForbidden):
    CODE: ClassVar[str] = "auth.unit_suspended"


class UnitQuarantined(DeviceForbidden):
    CODE: ClassVar[str] = "auth.unit_quarantined"


class UnitDecommissioned(DeviceForbidden):
    CODE: ClassVar[str] = "auth.unit_decommissioned"


class UnitUnknown(DeviceForbidden):
    CODE: ClassVar[str] = "auth.unit_unknown"


class NetworkNotAllowed(DeviceForbidden):
    """Raised only once the unit is proven, so naming the reason is no oracle; the device
    learns why (its operator must change the network or the policy), not its networks."""

    CODE: ClassVar[str] = "auth.network_not_allowed"
    PUBLIC_MESSAGE: ClassVar[str] = "the device may not authenticate from this network"


# ---- managing device credentials (operator side; not refusals) ------------------------------


class InvalidDeviceKey(InvalidInput):
    """A key to register is unusable: wrong type or size, unsupported curve, bad encoding."""

    CODE: ClassVar[str] = "deviceauth.invalid_key"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class InvalidLimits(InvalidInput):
    """`AuthLimits` or a rotation overlap outside what the service accepts."""

    CODE: ClassVar[str] = "deviceauth.invalid_limits"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class DeviceKeyNotFound(NotFound):
    CODE: ClassVar[str] = "deviceauth.key_not_found"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class DeviceKeyExists(Conflict):
    CODE: ClassVar[str] = "deviceauth.key_exists"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)

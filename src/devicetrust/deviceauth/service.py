"""`DeviceAuthService`: the one place every entry point (API, provisioning, MQTT gateway)
judges a device, so a unit is judged the same way everywhere.

    auth = DeviceAuthService(db, clock, vault, cert_verifier=device_verifier(pki, clock),
                             limits_for=policy_limits, failure_limiter=FailureLimiter(clock))
    device = auth.authenticate_certificate(der_chain, entry_point="mqtt", source=peer_ip)
    device = auth.authenticate_hmac_token(password, resource="mqtt.example.com")
    device = auth.authenticate_jwt(bearer, audience="https://api.example.com")

Each returns an `AuthenticatedDevice` or raises an `AuthRefused` with a precise `auth.*` code
(see `errors`), after appending an audit entry `device.auth_refused` (code, method, entry
point, the claimed unit id and the refusal's details: never a token, MAC, signature or key).
Entry points show the device only `AuthRefused.public_problem()`. When the entry point passes
the peer's `source` address, a proven unit outside its policy's allowed networks is refused
(`auth.network_not_allowed`, 403, audited). With a `failure_limiter`,
a source address past its budget of failures is refused (`auth.rate_limited`) before any
work and without an audit write, so a flood cannot fill the audit log.

Successful authentications write nothing but a spent nonce/jti: they are counted by the
entry point (metrics), not audited one by one, so the audit chain's single head is not a
bottleneck of the data plane.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import jwt

from devicetrust.deviceauth.errors import AuthRateLimited, AuthRefused
from devicetrust.deviceauth.hmac_auth import HmacTokenAuthenticator
from devicetrust.deviceauth.jwt_auth import JwtAuthenticator
from devicetrust.deviceauth.mtls_auth import (
    CertificateAuthenticator,
    ChainVerifier,
    claimed_physical_id,
)
from devicetrust.deviceauth.public_keys import DevicePublicKeys
from devicetrust.deviceauth.records import (
    AuthenticatedDevice,
    AuthMethod,
    LimitsFor,
    default_limits,
)
from devicetrust.deviceauth.replay import ReplayLedger
from devicetrust.deviceauth.token_keys import TokenKeys
from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import ConfigurationError
from devicetrust.provisioning.errors import RateLimited
from devicetrust.provisioning.ratelimit import FailureLimiter
from devicetrust.store.database import Database
from devicetrust.store.journal import append_audit
from devicetrust.vault import Sealer

REFUSAL_ACTION = "device.auth_refused"
_CLAIMED_ID = re.compile(r"&id=([0-9a-f-]{36})&")
_MAX_DETAIL = 300


def _audit_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_audit_value(v) for v in value[:16]]
    return str(value)[:_MAX_DETAIL]


def _audit_details(details: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k)[:64]: _audit_value(v) for k, v in list(details.items())[:16]}


def _claimed_jwt_subject(token: object) -> str | None:
    if not isinstance(token, str) or len(token) > 4096:
        return None
    try:
        sub = jwt.decode(token, options={"verify_signature": False}).get("sub")
    except jwt.PyJWTError:
        return None
    return sub[:64] if isinstance(sub, str) else None


class DeviceAuthService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        sealer: Sealer,
        *,
        cert_verifier: ChainVerifier | None = None,
        limits_for: LimitsFor = default_limits,
        cache_ttl: timedelta = timedelta(0),
        failure_limiter: FailureLimiter | None = None,
        group_commit: bool = True,
    ) -> None:
        """`cache_ttl` (0 to 60 s, off by default): how long a token key row and its unit's
        state may be served from memory to HMAC and JWT authentications (see `_cache`);
        changes made through this service clear the cache at once, changes made elsewhere
        are seen within `cache_ttl`. Certificate authentication never uses it: it reads the
        chain's revocation status and the unit's state anew each time (`mtls_auth`).
        `failure_limiter`: failed authentications per source address (the `source` an entry
        point passes); a source over its budget is refused before any work and unaudited.
        `group_commit`: concurrent authentications write their spent nonces/jtis in one
        INSERT per batch (`replay`); False writes one transaction per token."""
        self._limiter = failure_limiter
        self._db = db
        self._clock = clock
        self._limits_for = limits_for
        self.token_keys = TokenKeys(db, clock, sealer, on_change=self.clear_caches)
        self.public_keys = DevicePublicKeys(db, clock, on_change=self.clear_caches)
        self._replay = ReplayLedger(db, group_commit=group_commit)
        self._hmac = HmacTokenAuthenticator(
            db, clock, self.token_keys, limits_for, self._replay, cache_ttl=cache_ttl
        )
        self._jwt = JwtAuthenticator(db, clock, limits_for, self._replay, cache_ttl=cache_ttl)
        self._mtls: CertificateAuthenticator | None = None
        if cert_verifier is not None:
            self.use_cert_verifier(cert_verifier)

    def use_cert_verifier(self, verifier: ChainVerifier) -> None:
        """Swap the chain verifier (after a CA rotation or import changed the trust roots)."""
        self._mtls = CertificateAuthenticator(self._db, self._clock, verifier, self._limits_for)

    def clear_caches(self) -> None:
        """Forget every cached key row and unit state (e.g. on a `device.state_changed`,
        `device.replaced` or `device_credential.revoked` event from another process)."""
        self._hmac.clear_cache()
        self._jwt.clear_cache()
        if self._mtls is not None:
            self._mtls.clear_cache()

    # ---- authenticate ---------------------------------------------------------------------

    def authenticate_certificate(
        self,
        chain: Sequence[bytes] | bytes,
        *,
        entry_point: str = "unspecified",
        source: str | None = None,
    ) -> AuthenticatedDevice:
        """A client certificate chain: DER certificates leaf first, or one PEM blob."""
        if self._mtls is None:
            raise ConfigurationError(
                "deviceauth.no_trust_roots", "no certificate verifier is configured"
            )
        self._check_source(source)
        try:
            return self._mtls.authenticate(chain, source=source)
        except AuthRefused as exc:
            claimed = claimed_physical_id(chain)
            self._refused(exc, AuthMethod.MTLS, claimed, entry_point, source)
            raise

    def authenticate_hmac_token(
        self,
        token: object,
        *,
        resource: str,
        entry_point: str = "unspecified",
        source: str | None = None,
        dry_run: bool = False,
    ) -> AuthenticatedDevice:
        """An HMAC identifier token (`hmac_format`) made for `resource`. `dry_run`: every
        check, but a valid nonce is not spent (a spent one is still refused)."""
        self._check_source(source)
        try:
            return self._hmac.authenticate(
                token, resource=resource, spend=not dry_run, source=source
            )
        except AuthRefused as exc:
            found = _CLAIMED_ID.search(token[:128]) if isinstance(token, str) else None
            claimed = found[1] if found else None
            self._refused(exc, AuthMethod.HMAC_TOKEN, claimed, entry_point, source)
            raise

    def authenticate_jwt(
        self,
        token: object,
        *,
        audience: str,
        entry_point: str = "unspecified",
        source: str | None = None,
        dry_run: bool = False,
    ) -> AuthenticatedDevice:
        """A device JWT (`jwt_auth`) whose `aud` holds `audience`. `dry_run`: every check,
        but a valid jti is not spent (a spent one is still refused)."""
        self._check_source(source)
        try:
            return self._jwt.authenticate(
                token, audience=audience, spend=not dry_run, source=source
            )
        except AuthRefused as exc:
            claimed = _claimed_jwt_subject(token)
            self._refused(exc, AuthMethod.JWT, claimed, entry_point, source)
            raise

    # ---- upkeep ---------------------------------------------------------------------------

    def purge_expired(self) -> int:
        """Periodic upkeep: forget spent nonces/jtis that can no longer be replayed, and
        erase the keys of token key versions past their retirement."""
        return self._replay.purge(self._clock.now()) + self.token_keys.purge()

    def _check_source(self, source: str | None) -> None:
        if self._limiter is None or source is None:
            return
        try:
            self._limiter.check([f"src:{source}"])
        except RateLimited as exc:
            raise AuthRateLimited(
                "too many failed authentications from this source", retry_after=exc.retry_after
            ) from exc

    def _refused(
        self,
        exc: AuthRefused,
        method: AuthMethod,
        claimed: str | None,
        entry_point: str,
        source: str | None,
    ) -> None:
        if self._limiter is not None and source is not None:
            self._limiter.failed([f"src:{source}"])
        self._audit_refusal(exc, method, claimed, entry_point, source)

    def _audit_refusal(
        self,
        exc: AuthRefused,
        method: AuthMethod,
        claimed: str | None,
        entry_point: str,
        source: str | None,
    ) -> None:
        # The claimed id is the remote party's text: kept only if short printable ASCII.
        if claimed is not None and not (claimed.isascii() and claimed.isprintable()):
            claimed = None
        subject = claimed or "unknown"
        with self._db.transaction() as session:
            append_audit(
                session,
                at=self._clock.now(),
                actor=f"device:{subject}",
                action=REFUSAL_ACTION,
                subject=subject,
                details={
                    "code": exc.code,
                    "method": method.value,
                    "entry_point": entry_point[:64],
                    "source": source[:64] if source is not None else None,
                    "claimed_id": claimed,
                    "reason": exc.message[:_MAX_DETAIL],
                    "details": _audit_details(exc.details),
                },
            )

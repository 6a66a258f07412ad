"""Authentication by JWT device token (RFC 7519), signed by the unit's own private key, in
the order of `rules`:

1. the header parses, names only `alg`, `typ`, and one of `kid` / `x5t#S256`; `alg` is
   ES256 or EdDSA (`none`, HS*, RS* and the rest are refused before any key is looked up)
                                                    auth.token_malformed / auth.algorithm_refused
2. the key: `kid` = SHA-256 hex of a registered public key's SPKI (`public_keys`), or
   `x5t#S256` = base64url SHA-256 of the unit's operational certificate (issued by our CA,
   not revoked, inside its validity); the header's `alg` must be the one the key's type
   pins (P-256 -> ES256, Ed25519 -> EdDSA) and one the unit's limits allow
                                   auth.key_unknown / _revoked / _retired, auth.algorithm_refused
3. the signature verifies (PyJWT, `algorithms=[the pinned alg]`)   auth.token_invalid
4. `aud` contains the audience the entry point serves              auth.token_wrong_audience
   `sub`, `iat`, `exp`, `jti` present and well-typed; `sub` is the key's unit
                                                    auth.token_malformed / auth.token_wrong_subject
5. the unit's limits allow jwt                                     auth.method_not_allowed
6. exp not passed beyond the skew, iat/nbf not ahead of it, exp - iat within the maximum
   lifetime                     auth.token_expired / _not_yet_valid / _lifetime_exceeded
7. the unit's state admits it                                      auth.unit_*
8. the jti is spent once (kept until exp + skew)                   auth.token_replayed

Time checks use the service's `Clock`, never PyJWT's (its own exp/iat/nbf checks are off).
JOSE is PyJWT's: nothing here encodes or verifies a JWS by hand. Never logs, audits or puts
into an error a signature or the token.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt
from cryptography import x509
from sqlalchemy import bindparam, select

from devicetrust.deviceauth import rules
from devicetrust.deviceauth._cache import TtlCache
from devicetrust.deviceauth._unit import (
    STANDING_COLUMNS,
    UnitStanding,
    standing_limits,
    with_standing,
)
from devicetrust.deviceauth.errors import (
    AlgorithmRefused,
    InvalidDeviceKey,
    KeyRetired,
    KeyRevoked,
    KeyUnknown,
    TokenInvalid,
    TokenMalformed,
    TokenWrongAudience,
    TokenWrongSubject,
)
from devicetrust.deviceauth.public_keys import VerificationKey, algorithm_for, load_registered
from devicetrust.deviceauth.records import (
    AuthenticatedDevice,
    AuthLimits,
    AuthMethod,
    JwtAlgorithm,
    LimitsFor,
)
from devicetrust.deviceauth.replay import ReplayLedger
from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import InvalidInput
from devicetrust.domain.ids import parse_physical_id
from devicetrust.pki.serials import serial_text
from devicetrust.store.database import Database
from devicetrust.store.models import IssuedCertificateRow, PhysicalIdentityRow
from devicetrust.store.models_device_auth import DevicePublicKeyRow

MAX_JWT_LENGTH = 4096
REQUIRED_CLAIMS = ("sub", "aud", "iat", "exp", "jti")
_HEADER_FIELDS = frozenset({"alg", "typ", "kid", "x5t#S256"})
_KID = re.compile(r"[0-9a-f]{64}")
_JTI = re.compile(r"[\x21-\x7e]{8,128}")
_ALGORITHMS = {a.value: a for a in JwtAlgorithm}
# The only JWS algorithm objects a device token can reach (PyJWT's own implementations).
_JWS = jwt.PyJWS(algorithms=list(_ALGORITHMS))
_JWT = jwt.PyJWT(
    {
        "verify_signature": True,
        "verify_aud": True,
        "verify_exp": False,  # checked against the Clock below
        "verify_iat": False,
        "verify_nbf": False,
        "verify_iss": False,
        "require": list(REQUIRED_CLAIMS),
    }
)

_PUBLIC_KEY = with_standing(
    select(DevicePublicKeyRow, *STANDING_COLUMNS).join(
        PhysicalIdentityRow, PhysicalIdentityRow.id == DevicePublicKeyRow.physical_id
    )
).where(DevicePublicKeyRow.key_id == bindparam("kid"))
_CERTIFICATE = with_standing(
    select(IssuedCertificateRow, *STANDING_COLUMNS).join(
        PhysicalIdentityRow, PhysicalIdentityRow.id == IssuedCertificateRow.physical_id
    )
).where(
    IssuedCertificateRow.fingerprint_sha256 == bindparam("fp"),
    IssuedCertificateRow.profile == "device",
)


def signature_valid(key: VerificationKey, signing_input: bytes, signature: bytes) -> bool:
    """The signature step of a device JWT on its own: the algorithm the key pins, checked by
    the same PyJWT algorithm object `jwt.decode` uses (ES256 signatures are r||s, RFC 7518
    §3.4). Used by the Wycheproof tests."""
    algorithm = _JWS.get_algorithm_by_name(algorithm_for(key).value)
    return bool(algorithm.verify(signing_input, key, signature))


@lru_cache(maxsize=4096)
def _certificate_key(der: bytes) -> object:
    return x509.load_der_x509_certificate(der).public_key()


def read_header(token: object) -> dict[str, Any]:
    """The unverified JOSE header, checked for shape and algorithm only."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_JWT_LENGTH:
        raise TokenMalformed(f"a JWT is a string of at most {MAX_JWT_LENGTH} characters")
    try:
        header = _JWS.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenMalformed("the token is not a compact JWS") from exc
    unknown = set(header) - _HEADER_FIELDS
    if unknown:
        raise TokenMalformed("the JWT header has unsupported fields", fields=sorted(unknown)[:8])
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in _ALGORITHMS:
        raise AlgorithmRefused(
            "device JWTs are ES256 or EdDSA", alg=str(alg)[:16] if alg is not None else None
        )
    if ("kid" in header) == ("x5t#S256" in header):
        raise TokenMalformed("the JWT header names its key by exactly one of kid or x5t#S256")
    return header


def _fingerprint(x5t: object) -> str:
    if not isinstance(x5t, str) or not re.fullmatch(r"[A-Za-z0-9_-]{43}", x5t):
        raise TokenMalformed("x5t#S256 is the base64url SHA-256 of a certificate")
    try:
        return base64.urlsafe_b64decode(x5t + "=").hex()
    except (ValueError, binascii.Error) as exc:  # pragma: no cover - the pattern excludes it
        raise TokenMalformed("x5t#S256 is not base64url") from exc


def _claimed_time(claims: dict[str, Any], name: str) -> datetime:
    value = claims[name]
    if type(value) is not int:
        raise TokenMalformed(f"the token's {name} is an integer of unix seconds")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise TokenMalformed(f"the token's {name} is not a usable time") from exc


@dataclass(frozen=True, slots=True)
class _KeyEntry:
    key: VerificationKey | None  # None: a certificate key of a type no device JWT uses
    unit: UnitStanding
    credential_id: str
    revoked: bool
    not_before: datetime | None
    not_after: datetime | None  # refused from this instant on
    certificate: bool


class JwtAuthenticator:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        limits_for: LimitsFor,
        replay: ReplayLedger,
        *,
        cache_ttl: timedelta = timedelta(0),
    ) -> None:
        self._db = db
        self._clock = clock
        self._limits_for = standing_limits(limits_for)
        self._replay = replay
        self._cache: TtlCache[tuple[str, str], _KeyEntry] = TtlCache(clock, cache_ttl)

    def clear_cache(self) -> None:
        self._cache.clear()

    def authenticate(
        self, token: object, *, audience: str, spend: bool = True, source: str | None = None
    ) -> AuthenticatedDevice:
        """`spend=False` (a dry run) refuses a spent jti but records nothing. `source`: the
        peer's address, checked against the unit's networks once the jti is spent."""
        header = read_header(token)
        assert isinstance(token, str)
        now = self._clock.now()
        key, unit, credential_id = self._key(header, now)
        try:
            algorithm = algorithm_for(key)
        except InvalidDeviceKey as exc:  # a P-384 certificate key, say
            raise AlgorithmRefused("the key's type signs no device JWT") from exc
        limits = self._limits_for(unit)
        if header["alg"] != algorithm.value or algorithm not in limits.jwt_algorithms:
            raise AlgorithmRefused(
                "the token's alg is not the one its key pins, or not allowed for the unit",
                alg=header["alg"],
                key_alg=algorithm.value,
            )
        claims = self._verified_claims(token, key, algorithm, audience)
        try:
            subject = parse_physical_id(claims["sub"]) if isinstance(claims["sub"], str) else None
        except InvalidInput:
            subject = None
        if subject != unit.physical_id:
            raise TokenWrongSubject("the token's sub is not the unit its key belongs to")
        jti = claims["jti"]
        if not isinstance(jti, str) or not _JTI.fullmatch(jti):
            raise TokenMalformed("jti is 8-128 printable ASCII characters")
        rules.check_method(limits, AuthMethod.JWT)
        expires = self._check_time(claims, now, limits)
        rules.check_unit_state(unit.state)
        if not spend:
            self._replay.check_unspent(unit.physical_id, AuthMethod.JWT, jti)
        else:
            self._replay.spend(
                unit.physical_id,
                AuthMethod.JWT,
                jti,
                at=now,
                until=rules.replay_horizon(expires, limits),
            )
        if source is not None:
            rules.check_source(limits, source)
        return AuthenticatedDevice(
            physical_id=unit.physical_id,
            logical_name=unit.logical_name,
            method=AuthMethod.JWT,
            credential_id=credential_id,
            expires_at=expires,
            authenticated_at=now,
        )

    def _key(
        self, header: dict[str, Any], now: datetime
    ) -> tuple[VerificationKey, UnitStanding, str]:
        """The verification key the header names, its unit, and the credential's id."""
        if "kid" in header:
            kid = header["kid"]
            if not isinstance(kid, str) or not _KID.fullmatch(kid):
                raise TokenMalformed("kid is the SHA-256 hex of a registered key's SPKI")
            entry = self._cache.get(("kid", kid), lambda: self._load_registered(kid))
            if entry is None:
                raise KeyUnknown("no registered public key has that kid", kid=kid)
        else:
            fingerprint = _fingerprint(header["x5t#S256"])
            entry = self._cache.get(("x5t", fingerprint), lambda: self._load_cert(fingerprint))
            if entry is None:
                raise KeyUnknown("no device certificate of ours has that x5t#S256")
        what = "certificate" if entry.certificate else "public key"
        if entry.revoked:
            raise KeyRevoked(f"that {what} was revoked", credential=entry.credential_id)
        if (entry.not_before is not None and now < entry.not_before) or (
            entry.not_after is not None and now >= entry.not_after
        ):
            raise KeyRetired(f"that {what} is outside its validity", credential=entry.credential_id)
        if entry.key is None:  # RSA or P-384: signs no device JWT
            raise AlgorithmRefused("the certificate's key type signs no device JWT")
        return entry.key, entry.unit, entry.credential_id

    def _load_registered(self, kid: str) -> _KeyEntry | None:
        with self._db.read() as session:
            found = session.execute(_PUBLIC_KEY, {"kid": kid}).first()
        if found is None:
            return None
        row, *standing = found
        return _KeyEntry(
            key=load_registered(row.public_key_pem),
            unit=UnitStanding.from_columns(row.physical_id, standing),
            credential_id=kid,
            revoked=row.revoked_at is not None,
            not_before=None,
            not_after=row.expires_at,
            certificate=False,
        )

    def _load_cert(self, fingerprint: str) -> _KeyEntry | None:
        with self._db.read() as session:
            issued = session.execute(_CERTIFICATE, {"fp": fingerprint}).first()
        if issued is None:
            return None
        cert, *standing = issued
        if cert.physical_id is None:  # excluded by the join; a server certificate has none
            return None
        key = _certificate_key(cert.der)
        return _KeyEntry(
            key=key if isinstance(key, VerificationKey) else None,
            unit=UnitStanding.from_columns(cert.physical_id, standing),
            credential_id=serial_text(int(cert.serial, 16)),
            revoked=cert.revoked_at is not None,
            not_before=cert.not_before,
            # notAfter is the last valid instant (RFC 5280 §4.1.2.5): refused after it
            not_after=cert.not_after + timedelta(microseconds=1),
            certificate=True,
        )

    @staticmethod
    def _verified_claims(
        token: str, key: VerificationKey, algorithm: JwtAlgorithm, audience: str
    ) -> dict[str, Any]:
        try:
            decoded = _JWT.decode_complete(
                token, key=key, algorithms=[algorithm.value], audience=audience
            )
        except jwt.InvalidSignatureError as exc:
            raise TokenInvalid("the token's signature does not verify") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise AlgorithmRefused("the token's alg is not the key's") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise TokenMalformed(
                f"a device JWT carries {', '.join(REQUIRED_CLAIMS)}", claim=exc.claim
            ) from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenWrongAudience("the token is for another audience") from exc
        except jwt.PyJWTError as exc:
            raise TokenMalformed("the token does not decode", reason=type(exc).__name__) from exc
        claims: dict[str, Any] = decoded["payload"]
        return claims

    @staticmethod
    def _check_time(claims: dict[str, Any], now: datetime, limits: AuthLimits) -> datetime:
        expires = _claimed_time(claims, "exp")
        issued = _claimed_time(claims, "iat")
        not_before = _claimed_time(claims, "nbf") if "nbf" in claims else None
        rules.check_token_time(
            now, limits, expires=expires, issued_at=issued, not_before=not_before
        )
        return expires

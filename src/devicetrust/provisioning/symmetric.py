"""Symmetric-key attestation: the device presents a token MACed with its per-device key.

Wire format (sans-I/O; `encode_token` is what a device computes):

    token  = base64url(claims) "." base64url(HMAC-SHA256(device_key, claims))
    claims = JSON {"registration_id": <physical id>, "exp": <unix seconds>, "nonce": <16-64
             base64url chars>}, the exact bytes the MAC covers

The device key is the enrollment's own key (individual) or HMAC-SHA256(group_key,
physical_id) (group), computed in a `bytearray` zeroed when done.

`authorize` checks, in this order: the token parses (provisioning.malformed_evidence), the
MAC matches in constant time (token_invalid), it names the requesting unit (token_invalid),
it has not expired beyond the clock-skew window (token_expired), its expiry is not further
ahead than the maximum lifetime (token_lifetime_exceeded), its nonce was never used
(token_replayed). The service burns the nonce; a token is accepted once.

Never logs, audits or puts into an error a key, a MAC or a whole token; never writes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from devicetrust.domain.ids import PhysicalId
from devicetrust.provisioning.enrollments import derive_key, key_aad, zero
from devicetrust.provisioning.errors import AttestationFailed, MalformedEvidence, RefusalReason
from devicetrust.provisioning.methods import (
    AttestationContext,
    Authorization,
    RegistrationRequest,
    SingleUse,
)
from devicetrust.provisioning.records import AttestationKind, Enrollment, EnrollmentKind
from devicetrust.vault import Sealer

MAX_TOKEN_LENGTH = 1024
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_CLAIMS = frozenset({"registration_id", "exp", "nonce"})


def b64url(data: bytes | bytearray) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_token(
    device_key: bytes | bytearray, registration_id: str, exp: datetime | int, nonce: str
) -> str:
    """The token a device sends (also used by tests and the fleet simulator)."""
    expiry = int(exp.timestamp()) if isinstance(exp, datetime) else int(exp)
    claims = json.dumps(
        {"registration_id": registration_id, "exp": expiry, "nonce": nonce},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    mac = hmac.digest(bytes(device_key), claims, hashlib.sha256)
    return f"{b64url(claims)}.{b64url(mac)}"


def decode_token(token: object) -> tuple[bytes, bytes, Mapping[str, Any]]:
    """(claims bytes, MAC, claims) of a well-formed token; nothing here is verified."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
        raise MalformedEvidence(f"evidence.token is a string of at most {MAX_TOKEN_LENGTH}")
    body, sep, tag = token.partition(".")
    if not sep or "." in tag:
        raise MalformedEvidence("a token is <claims>.<mac>, both base64url")
    try:
        claims_bytes, mac = b64url_decode(body), b64url_decode(tag)
        claims = json.loads(claims_bytes)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise MalformedEvidence("the token is not base64url JSON claims and a MAC") from exc
    ok = (
        isinstance(claims, dict)
        and set(claims) == _CLAIMS
        and isinstance(claims["registration_id"], str)
        and type(claims["exp"]) is int
        and isinstance(claims["nonce"], str)
        and _NONCE.match(claims["nonce"]) is not None
        and len(mac) == hashlib.sha256().digest_size
    )
    if not ok:
        raise MalformedEvidence(
            "token claims are exactly registration_id (string), exp (integer) and nonce "
            "(16-64 base64url characters); the MAC is HMAC-SHA256"
        )
    return claims_bytes, mac, claims


class SymmetricKeyMethod:
    """`AttestationMethod` for symmetric-key enrollments (individual and group)."""

    def __init__(
        self,
        sealer: Sealer,
        *,
        max_lifetime: timedelta = timedelta(hours=1),
        clock_skew: timedelta = timedelta(minutes=5),
    ) -> None:
        self._sealer = sealer
        self._max_lifetime = max_lifetime
        self._skew = clock_skew

    @property
    def kind(self) -> AttestationKind:
        return AttestationKind.SYMMETRIC_KEY

    def authorize(
        self,
        request: RegistrationRequest,
        enrollment: Enrollment,
        context: AttestationContext,
    ) -> Authorization:
        claims_bytes, mac, claims = decode_token(request.evidence.get("token"))
        key = self._device_key(enrollment, request.physical_id)
        try:
            expected = hmac.digest(bytes(key), claims_bytes, hashlib.sha256)
        finally:
            zero(key)
        if not hmac.compare_digest(expected, mac):
            raise AttestationFailed(RefusalReason.TOKEN_INVALID, "the token's MAC does not verify")
        if not hmac.compare_digest(claims["registration_id"], request.physical_id):
            raise AttestationFailed(
                RefusalReason.TOKEN_INVALID, "the token is for another registration id"
            )
        now = context.now()
        try:
            expiry = datetime.fromtimestamp(claims["exp"], UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise MalformedEvidence("the token's exp is not a usable time") from exc
        if now > expiry + self._skew:
            raise AttestationFailed(
                RefusalReason.TOKEN_EXPIRED, "the token has expired", exp=expiry.isoformat()
            )
        if expiry - now > self._max_lifetime + self._skew:
            raise AttestationFailed(
                RefusalReason.TOKEN_TOO_LONG,
                f"a token may be valid for at most {self._max_lifetime}",
                exp=expiry.isoformat(),
            )
        nonce = claims["nonce"]
        if context.nonce_used(nonce):
            raise AttestationFailed(RefusalReason.TOKEN_REPLAYED, "the token was already used")
        return Authorization(
            physical_id=request.physical_id,
            enrollment_id=enrollment.enrollment_id,
            method=self.kind,
            single_use=SingleUse("nonce", nonce, expiry + self._skew),
            audit={"enrollment": enrollment.name, "exp": expiry.isoformat()},
        )

    def _device_key(self, enrollment: Enrollment, physical_id: PhysicalId) -> bytearray:
        if enrollment.sealed_key is None:
            raise AttestationFailed(RefusalReason.TOKEN_INVALID, "the enrollment holds no key")
        opened = self._sealer.open(enrollment.sealed_key, aad=key_aad(enrollment.enrollment_id))
        if enrollment.kind is EnrollmentKind.INDIVIDUAL:
            return opened
        try:
            return derive_key(opened, physical_id)
        finally:
            zero(opened)

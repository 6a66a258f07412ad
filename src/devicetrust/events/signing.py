"""Webhook signatures: the `DeviceTrust-Signature` header, made and checked.

    DeviceTrust-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

The signed message is the timestamp, a dot and the raw request body, so neither can be swapped
or replayed outside the tolerance window. During a secret rotation the sender adds one `v1`
entry per secret; a receiver accepts the request if any entry matches its secret. Entries of
other schemes (`v0`, a future `v2`) are ignored, so the header can grow without breaking
receivers.

Order of checks in `verify` (fixed, so a forged request learns nothing from the timing of a
later step): shape of the header, then the MAC, then the timestamp window. MACs are compared
in constant time (`hmac.compare_digest`).

This module is what a webhook receiver imports: it must never import a server dependency
(database, HTTP client, web framework), only the standard library and `devicetrust.domain`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from devicetrust.domain.errors import Unauthorized

SIGNATURE_HEADER = "DeviceTrust-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE = timedelta(minutes=5)
MAX_HEADER_LENGTH = 4096
MAX_SIGNATURES = 8

_HEX_MAC_RE = re.compile(r"[0-9a-f]{64}")
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")

Secret = bytes | bytearray | str
"""A signing secret as held by the receiver: the `whsec_...` text (used as its UTF-8 bytes),
or those bytes."""


class SignatureError(Unauthorized):
    """The request does not carry a valid signature. `code` says why:

    - `webhook.signature_malformed`: no header, or not `t=...,v1=...`;
    - `webhook.signature_invalid`: no `v1` entry matches the secret (wrong secret, body altered);
    - `webhook.signature_expired`: the signature is older than the tolerance;
    - `webhook.signature_from_future`: its timestamp is further ahead than the tolerance.

    A receiver should answer all of them the same way (e.g. 400) and log the code.
    """


def hmac_sha256(key: Secret, message: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104 / FIPS 198-1) of `message` under `key`."""
    return hmac.new(_key_bytes(key), message, hashlib.sha256).digest()


def signed_payload(timestamp: int, body: bytes) -> bytes:
    """The exact bytes the MAC covers: `<unix seconds>.` then the raw body."""
    return f"{timestamp}.".encode("ascii") + body


def sign(
    secret: Secret, body: bytes, timestamp: datetime, *, previous: Sequence[Secret] = ()
) -> str:
    """The `DeviceTrust-Signature` value for `body` sent at `timestamp`.

    `previous` adds a `v1` entry per older secret, for receivers still on it during a rotation.
    """
    unix = _unix(timestamp)
    message = signed_payload(unix, bytes(body))
    macs = [hmac_sha256(key, message).hex() for key in (secret, *previous)]
    return ",".join([f"t={unix}", *(f"{SCHEME}={mac}" for mac in macs)])


def verify(
    secret: Secret,
    header: str | None,
    body: bytes,
    *,
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> datetime:
    """Check a `DeviceTrust-Signature` header against the raw `body`; return the signing time.

    Raises `SignatureError` (see its codes). `now` comes from the receiver's clock.
    """
    if tolerance < timedelta(0):
        raise ValueError("tolerance is not negative")
    unix, candidates = _parse(header)
    expected = hmac_sha256(secret, signed_payload(unix, bytes(body))).hex()
    # Compare with every entry (no early exit) so timing does not reveal which one matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError(
            "webhook.signature_invalid", "no signature matches the secret and the body"
        )
    signed_at = datetime.fromtimestamp(unix, UTC)
    age = _aware(now) - signed_at
    if age > tolerance:
        raise SignatureError(
            "webhook.signature_expired",
            f"the signature is {int(age.total_seconds())} s old (tolerance "
            f"{int(tolerance.total_seconds())} s)",
            signed_at=signed_at.isoformat(),
        )
    if -age > tolerance:
        raise SignatureError(
            "webhook.signature_from_future",
            "the signature timestamp is ahead of the receiver's clock by more than the tolerance",
            signed_at=signed_at.isoformat(),
        )
    return signed_at


def _parse(header: str | None) -> tuple[int, list[str]]:
    if not isinstance(header, str) or not header.strip():
        raise _malformed(f"the {SIGNATURE_HEADER} header is missing")
    if len(header) > MAX_HEADER_LENGTH:
        raise _malformed(f"the {SIGNATURE_HEADER} header is over {MAX_HEADER_LENGTH} characters")
    timestamp: int | None = None
    macs: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or not key:
            raise _malformed("each entry is key=value")
        if key == "t":
            if timestamp is not None or not _TIMESTAMP_RE.fullmatch(value):
                raise _malformed("exactly one t=<unix seconds> entry is expected")
            timestamp = int(value)
        elif key == SCHEME:
            if not _HEX_MAC_RE.fullmatch(value):
                raise _malformed("a v1 entry is 64 lowercase hex digits")
            macs.append(value)
    if timestamp is None:
        raise _malformed("the t=<unix seconds> entry is missing")
    if not macs:
        raise _malformed("no v1 signature entry")
    if len(macs) > MAX_SIGNATURES:
        raise _malformed(f"at most {MAX_SIGNATURES} v1 entries")
    return timestamp, macs


def _malformed(message: str) -> SignatureError:
    return SignatureError("webhook.signature_malformed", message)


def _key_bytes(key: Secret) -> bytes | bytearray:
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, bytes | bytearray):
        return key
    raise TypeError("a signing secret is str, bytes or bytearray")


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("a timezone-aware datetime is needed")
    return moment


def _unix(moment: datetime) -> int:
    return int(_aware(moment).timestamp())

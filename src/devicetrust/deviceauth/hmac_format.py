"""The HMAC identifier token: a SAS-like (Azure IoT Hub `SharedAccessSignature`) bearer token
a unit computes with its symmetric key. Sans-I/O: bytes in, values out; no clock, no store.

Wire format (ASCII, fields in exactly this order, each exactly once, `n` optional):

    token  = "v=dt1" "&id=" physical-id "&kv=" key-version "&sr=" resource "&se=" expiry
             [ "&n=" nonce ] "&sig=" signature
    signed = every byte of the token before "&sig="
    signature = base64url-nopad( HMAC-SHA256(device_key, signed) )      (43 characters)

    physical-id  canonical UUIDv4 (lowercase, hyphenated), the unit's physical identity
    key-version  decimal 1..2147483647, no leading zero: which version of the unit's key
    resource     1-200 of [A-Za-z0-9._~:/-], what the token is for (e.g. "mqtt.example.com"),
                 compared with the resource the entry point expects (the audience)
    expiry       decimal unix seconds, no leading zero, at most 11 digits (like SAS `se`)
    nonce        16-64 of [A-Za-z0-9_-]; with a nonce the token is accepted once

`device_key` is the unit's token key of that version: for a unit of a symmetric-key group,
HMAC-SHA256(group_key, physical_id) (`provisioning.enrollments.derive_key`), or an individual
key. Example (key 32 bytes of 0x0b, whitespace added):

    v=dt1&id=c2c38155-b0d2-48b6-82fd-22fe3b316224&kv=1&sr=mqtt.example.com&se=1795000000
    &n=q1w2e3r4t5y6u7i8&sig=L2l74q4kzkvDNSSsql-U2OWGq9ggEXeD4aUV3_JoOGk

The same token with `openssl`: `printf %s "$signed" | openssl dgst -sha256 -mac HMAC -macopt
hexkey:$KEY -binary | basenc --base64url | tr -d '=\\n'`.

Parsing is canonical (one token, one byte string signed): any other field order, a repeated
or unknown field, a leading zero, padding or a non-canonical base64url tail is malformed.
Never puts a key, a MAC or a whole token in an error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from devicetrust.deviceauth.errors import TokenMalformed
from devicetrust.domain.ids import PhysicalId

VERSION = "dt1"
MAX_TOKEN_LENGTH = 512
MAC_SIZE = hashlib.sha256().digest_size
MAX_KEY_VERSION = 2**31 - 1

_FIELDS = re.compile(
    r"v=dt1"
    r"&id=(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})"
    r"&kv=(?P<kv>[1-9][0-9]{0,9})"
    r"&sr=(?P<sr>[A-Za-z0-9._~:/-]{1,200})"
    r"&se=(?P<se>[1-9][0-9]{0,10})"
    r"(?:&n=(?P<n>[A-Za-z0-9_-]{16,64}))?"
    r"&sig=(?P<sig>[A-Za-z0-9_-]{43})"
)
_RESOURCE = re.compile(r"[A-Za-z0-9._~:/-]{1,200}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


@dataclass(frozen=True, slots=True)
class HmacToken:
    """A well-formed token; nothing in it is verified yet."""

    physical_id: PhysicalId
    key_version: int
    resource: str
    expires: int  # unix seconds
    nonce: str | None
    signed: bytes  # the bytes the MAC covers
    mac: bytes


def b64url(data: bytes | bytearray) -> str:
    return base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode("ascii")


def token_mac(device_key: bytes | bytearray, signed: bytes) -> bytes:
    """HMAC-SHA256 of the signed bytes: the one MAC function of the format."""
    return hmac.digest(bytes(device_key), signed, hashlib.sha256)


def mac_matches(device_key: bytes | bytearray, signed: bytes, mac: bytes) -> bool:
    """Constant-time check of a presented MAC; a MAC of any other length never matches
    (truncated tags are not part of the format)."""
    expected = token_mac(device_key, signed)
    return len(mac) == MAC_SIZE and hmac.compare_digest(expected, mac)


def signed_part(
    physical_id: str, key_version: int, resource: str, expires: int, nonce: str | None
) -> str:
    """The text the MAC covers, from checked fields (device side)."""
    if not 1 <= key_version <= MAX_KEY_VERSION:
        raise ValueError(f"a key version is 1..{MAX_KEY_VERSION}")
    if not _RESOURCE.fullmatch(resource):
        raise ValueError("a resource is 1-200 characters of [A-Za-z0-9._~:/-]")
    if nonce is not None and not _NONCE.fullmatch(nonce):
        raise ValueError("a nonce is 16-64 base64url characters")
    if not 0 < expires < 10**11:
        raise ValueError("expiry is positive unix seconds of at most 11 digits")
    text = f"v={VERSION}&id={physical_id}&kv={key_version}&sr={resource}&se={expires}"
    return text if nonce is None else f"{text}&n={nonce}"


def new_nonce() -> str:
    """A fresh nonce: 128 CSPRNG bits, base64url (22 characters)."""
    return secrets.token_urlsafe(16)


def encode_token(
    device_key: bytes | bytearray,
    physical_id: str,
    key_version: int,
    resource: str,
    expires: datetime | int,
    nonce: str | None = None,
) -> str:
    """The token a device sends (pure: the device SDK, the simulator and tests use it)."""
    expiry = int(expires.timestamp()) if isinstance(expires, datetime) else int(expires)
    text = signed_part(physical_id, key_version, resource, expiry, nonce)
    if _FIELDS.fullmatch(f"{text}&sig={'A' * 43}") is None:
        raise ValueError("the physical id is not a canonical UUIDv4")
    return f"{text}&sig={b64url(token_mac(device_key, text.encode('ascii')))}"


def decode_token(token: object) -> HmacToken:
    """Parse a presented token (`auth.token_malformed` unless it is exactly the format)."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
        raise TokenMalformed(f"a token is a string of at most {MAX_TOKEN_LENGTH} characters")
    found = _FIELDS.fullmatch(token)
    if found is None:
        raise TokenMalformed(
            "a token is v=dt1&id=..&kv=..&sr=..&se=..[&n=..]&sig=.., in this order"
        )
    if int(found["kv"]) > MAX_KEY_VERSION:
        raise TokenMalformed(f"a key version is at most {MAX_KEY_VERSION}")
    sig = found["sig"]
    try:
        mac = base64.urlsafe_b64decode(sig + "=")
    except (ValueError, binascii.Error) as exc:  # pragma: no cover - the pattern excludes it
        raise TokenMalformed("the signature is not base64url") from exc
    if b64url(mac) != sig:  # the last character's two unused bits must be zero
        raise TokenMalformed("the signature is not canonical base64url")
    return HmacToken(
        physical_id=PhysicalId(found["id"]),
        key_version=int(found["kv"]),
        resource=found["sr"],
        expires=int(found["se"]),
        nonce=found["n"],
        signed=token[: found.start("sig") - len("&sig=")].encode("ascii"),
        mac=mac,
    )

"""Compact JWS (RFC 7515) ES256 tokens signed by any `DeviceKey`, hardware or not: the
device's fallback credential where TLS cannot use its key (docs/authentication.md, "JWT
device tokens": header `x5t#S256` or `kid`, claims `sub`, `aud`, `iat`, `exp`, `jti`).

The signature is the key's DER ECDSA signature converted to the fixed-size `r || s` that
RFC 7518 §3.4 requires (32 bytes each for P-256). Builds the JSON itself because the key may
be unreadable: no JOSE library takes a signing callback.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric import utils

from devicetrust.device.keystore._base import DeviceKey, KeystoreError

_COORDINATE_SIZE = 32  # P-256


def sign_jwt(key: DeviceKey, claims: Mapping[str, object], headers: Mapping[str, object]) -> str:
    """An ES256 JWT over `claims` with `headers` (e.g. `{"x5t#S256": ...}`) added to
    `{"alg": "ES256", "typ": "JWT"}`; `alg` cannot be changed."""
    if headers.get("alg", "ES256") != "ES256":
        raise KeystoreError("device keys sign ES256 tokens only", code="keystore.bad_jwt")
    header = {"alg": "ES256", "typ": "JWT", **headers}
    signing_input = f"{_segment(header)}.{_segment(claims)}".encode("ascii")
    r, s = utils.decode_dss_signature(key.sign(signing_input))
    signature = r.to_bytes(_COORDINATE_SIZE, "big") + s.to_bytes(_COORDINATE_SIZE, "big")
    return f"{signing_input.decode('ascii')}.{_b64url(signature)}"


def _segment(value: Mapping[str, object]) -> str:
    try:
        data = json.dumps(dict(value), separators=(",", ":"), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise KeystoreError(
            "JWT headers and claims must be JSON values", code="keystore.bad_jwt"
        ) from exc
    return _b64url(data.encode("utf-8"))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

"""The JWT signature step (`jwt_auth.signature_valid`: PyJWT's ES256 / EdDSA objects, pinned
by the key's type) against every Wycheproof ECDSA P-256 P1363 and Ed25519 case. JWS ES256
signatures are IEEE P1363 r||s (RFC 7518 §3.4), exactly these vectors' encoding."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_der_public_key

from devicetrust.deviceauth.jwt_auth import signature_valid
from tests.vectors import wycheproof


def _cases(name: str) -> list[tuple[str, dict[str, Any]]]:
    data = wycheproof(name)
    return [
        (group["publicKeyDer"], test) for group in data["testGroups"] for test in group["tests"]
    ]


@pytest.mark.parametrize(
    ("key_der", "case"),
    _cases("ecdsa_secp256r1_sha256_p1363_test.json") + _cases("ed25519_test.json"),
    ids=lambda v: str(v["tcId"]) if isinstance(v, dict) else "",
)
def test_wycheproof_signature(key_der: str, case: dict[str, Any]) -> None:
    key = load_der_public_key(bytes.fromhex(key_der))
    valid = signature_valid(key, bytes.fromhex(case["msg"]), bytes.fromhex(case["sig"]))  # type: ignore[arg-type]
    assert valid == (case["result"] == "valid"), case["comment"]

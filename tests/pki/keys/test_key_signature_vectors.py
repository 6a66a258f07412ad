"""Wycheproof vectors through `verify_signature` (and, for the P1363 files, through the raw
r || s to DER conversion the PKCS#11 backend uses): valid must verify, invalid must fail,
acceptable may go either way."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_der_public_key

from devicetrust.pki.keys import (
    CaPublicKey,
    KeyAlgorithm,
    SignatureInvalid,
    UnsupportedKeyAlgorithm,
    verify_signature,
)
from devicetrust.pki.keys._signature import ecdsa_raw_to_der
from tests.conftest import require_service
from tests.vectors import VECTORS as VECTORS_DIR

VECTOR_DIRS = [VECTORS_DIR / "wycheproof"]
FILES = {
    "ecdsa_secp256r1_sha256_test.json": (KeyAlgorithm.ECDSA_P256, False),
    "ecdsa_secp384r1_sha384_test.json": (KeyAlgorithm.ECDSA_P384, False),
    "ecdsa_secp256r1_sha256_p1363_test.json": (KeyAlgorithm.ECDSA_P256, True),
    "ecdsa_secp384r1_sha384_p1363_test.json": (KeyAlgorithm.ECDSA_P384, True),
    "ed25519_test.json": (KeyAlgorithm.ED25519, False),
}


@dataclass(frozen=True)
class Vector:
    algorithm: KeyAlgorithm
    raw_signature: bool
    public_key_der: bytes
    message: bytes
    signature: bytes
    result: str


def _vector_dir() -> Path | None:
    return next((d for d in VECTOR_DIRS if (d / next(iter(FILES))).is_file()), None)


def _load() -> list[tuple[str, Vector]]:
    directory = _vector_dir()
    if directory is None:
        return []
    cases: list[tuple[str, Vector]] = []
    for name, (algorithm, raw) in FILES.items():
        document = json.loads((directory / name).read_text())
        for group in document["testGroups"]:
            for test in group["tests"]:
                vector = Vector(
                    algorithm=algorithm,
                    raw_signature=raw,
                    public_key_der=bytes.fromhex(group["publicKeyDer"]),
                    message=bytes.fromhex(test["msg"]),
                    signature=bytes.fromhex(test["sig"]),
                    result=test["result"],
                )
                cases.append((f"{name.removesuffix('_test.json')}-{test['tcId']}", vector))
    return cases


CASES = _load()
VECTORS = [vector for _, vector in CASES]


def test_vectors_are_present() -> None:
    if _vector_dir() is None:
        require_service("Wycheproof test data", "../shared/testdata/wycheproof is missing")
    assert len(VECTORS) > 1500


def _verifies(vector: Vector) -> bool:
    public_key = load_der_public_key(vector.public_key_der)
    assert isinstance(public_key, CaPublicKey)
    try:
        signature = (
            ecdsa_raw_to_der(vector.signature, vector.algorithm)
            if vector.raw_signature
            else vector.signature
        )
        verify_signature(public_key, vector.algorithm, vector.message, signature)
    except SignatureInvalid:
        return False
    return True


@pytest.mark.parametrize("vector", VECTORS, ids=[case_id for case_id, _ in CASES])
def test_wycheproof(vector: Vector) -> None:
    outcome = _verifies(vector)
    if vector.result == "valid":
        assert outcome, "a valid signature was refused"
    elif vector.result == "invalid":
        assert not outcome, "an invalid signature was accepted"


def test_key_of_another_algorithm_is_refused() -> None:
    if not VECTORS:
        require_service("Wycheproof test data", "../shared/testdata/wycheproof is missing")
    vector = next(v for v in VECTORS if v.algorithm is KeyAlgorithm.ECDSA_P256)
    public_key = load_der_public_key(vector.public_key_der)
    assert isinstance(public_key, CaPublicKey)
    with pytest.raises(UnsupportedKeyAlgorithm):
        verify_signature(public_key, KeyAlgorithm.ECDSA_P384, vector.message, vector.signature)

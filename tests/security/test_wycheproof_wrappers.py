"""Wycheproof vectors (tests/vectors/wycheproof) through the wrappers no other suite runs
them through:

- HMAC-SHA256: `provisioning.enrollments.derive_key`, the per-device key of a group
  enrollment (HMAC-SHA256(group key, physical id)); every case with a full 256-bit tag and
  an ASCII message (a physical id is ASCII): the derived key equals the tag exactly when
  the case is valid.
- AES-GCM: the AEAD calls the vault makes (`encrypt_into` / `decrypt_into` into
  preallocated bytearrays) with the vault's parameters: 256-bit keys, 96-bit nonces,
  128-bit tags. The vault's envelope fixes its own AAD (label, version, key id), so the
  vectors go through the same calls rather than through `Vault.open`; tests/vault covers
  the envelope (flipped bits, truncation, splicing, other AAD or key).

The signature, HKDF and HMAC suites of deviceauth, events and pki keys read the same files.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from devicetrust.provisioning.enrollments import derive_key
from devicetrust.vault import _format
from tests.vectors import VECTORS, wycheproof, wycheproof_cases


def _ids(value: Any) -> str:
    return str(value["tcId"]) if isinstance(value, dict) and "tcId" in value else ""


def test_the_copied_files_are_whole() -> None:
    files = sorted((VECTORS / "wycheproof").glob("*.json"))
    assert len(files) >= 7
    for path in files:
        data = wycheproof(path.name)
        count = sum(len(group["tests"]) for group in data["testGroups"])
        assert count == data["numberOfTests"], path.name


HMAC_CASES = [
    (group, case)
    for group, case in wycheproof_cases("hmac_sha256_test.json")
    if group["tagSize"] == 256 and bytes.fromhex(case["msg"]).isascii()
]


@pytest.mark.parametrize(("group", "case"), HMAC_CASES, ids=_ids)
def test_group_key_derivation(group: dict[str, Any], case: dict[str, Any]) -> None:
    derived = derive_key(bytes.fromhex(case["key"]), bytes.fromhex(case["msg"]).decode("ascii"))
    assert (bytes(derived) == bytes.fromhex(case["tag"])) == (case["result"] == "valid")


def test_the_derivation_cases_are_not_all_refusals() -> None:
    assert sum(case["result"] == "valid" for _, case in HMAC_CASES) >= 4


VAULT_CASES = [
    (group, case)
    for group, case in wycheproof_cases("aes_gcm_test.json")
    if group["keySize"] == 8 * _format.DATA_KEY_SIZE
    and group["ivSize"] == 8 * _format.NONCE_SIZE
    and group["tagSize"] == 8 * _format.TAG_SIZE
]


@pytest.mark.parametrize(("group", "case"), VAULT_CASES, ids=_ids)
def test_vault_aead(group: dict[str, Any], case: dict[str, Any]) -> None:
    key, iv, aad = (bytes.fromhex(case[f]) for f in ("key", "iv", "aad"))
    msg, sealed = bytes.fromhex(case["msg"]), bytes.fromhex(case["ct"] + case["tag"])
    aead = AESGCM(key)
    opened = bytearray(len(sealed) - _format.TAG_SIZE)
    try:
        aead.decrypt_into(iv, sealed, aad, opened)
    except InvalidTag:
        assert case["result"] == "invalid", case["comment"]
        return
    assert case["result"] == "valid", case["comment"]
    assert opened == msg
    encrypted = bytearray(len(msg) + _format.TAG_SIZE)
    aead.encrypt_into(iv, msg, aad, encrypted)
    assert encrypted == sealed

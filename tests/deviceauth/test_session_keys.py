"""Session keys: the HKDF wrapper against RFC 5869 (cases 1-3) and every Wycheproof
HKDF-SHA256 case, and the ratchet's forward secrecy (old keys erased, one-way steps)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devicetrust.deviceauth.session_keys import (
    SessionKeyError,
    SessionKeyRatchet,
    context_info,
    derive_session_key,
    hkdf_sha256,
)
from tests.vectors import wycheproof

# RFC 5869 Appendix A, test cases 1-3 (SHA-256), typed from the RFC.
RFC5869 = [
    pytest.param(
        "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        "000102030405060708090a0b0c",
        "f0f1f2f3f4f5f6f7f8f9",
        42,
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        id="A.1 basic",
    ),
    pytest.param(
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
        "404142434445464748494a4b4c4d4e4f",
        "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
        "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
        "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"
        "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
        82,
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
        "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
        "cc30c58179ec3e87c14c01d5c1f3434f1d87",
        id="A.2 longer inputs",
    ),
    pytest.param(
        "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        "",
        "",
        42,
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
        id="A.3 zero-length salt and info",
    ),
]


@pytest.mark.parametrize(("ikm", "salt", "info", "length", "okm"), RFC5869)
def test_rfc5869(ikm: str, salt: str, info: str, length: int, okm: str) -> None:
    out = hkdf_sha256(
        bytearray.fromhex(ikm), salt=bytes.fromhex(salt), info=bytes.fromhex(info), length=length
    )
    assert isinstance(out, bytearray)
    assert out.hex() == okm


def _cases() -> list[dict[str, Any]]:
    data = wycheproof("hkdf_sha256_test.json")
    return [test for group in data["testGroups"] for test in group["tests"]]


@pytest.mark.parametrize("case", _cases(), ids=lambda c: str(c["tcId"]))
def test_wycheproof_hkdf_sha256(case: dict[str, Any]) -> None:
    ikm, salt, info = (bytes.fromhex(case[k]) for k in ("ikm", "salt", "info"))
    if case["result"] == "invalid":
        with pytest.raises(SessionKeyError):
            hkdf_sha256(ikm, salt=salt, info=info, length=case["size"])
        return
    assert hkdf_sha256(ikm, salt=salt, info=info, length=case["size"]).hex() == case["okm"]


def test_ratchet_erases_each_key_it_leaves() -> None:
    primary = bytearray(os.urandom(32))
    salt = os.urandom(16)
    ratchet = SessionKeyRatchet(primary, salt=salt, identity="unit", session_id="s")
    held = ratchet._key  # the buffer holding epoch 0 (white-box: it must be wiped)
    first = bytes(held)
    assert first == bytes(derive_session_key(primary, salt=salt, identity="unit", session_id="s"))
    assert ratchet.advance() == 1
    assert held == bytearray(32)  # epoch 0's key is gone from memory
    assert ratchet.key_copy() != first
    # The next key is HKDF of the previous one: computable forward, never backward.
    expected = hkdf_sha256(
        first, salt=salt, info=context_info("unit", "s", 1, ratchet=True), length=32
    )
    assert ratchet.key_copy() == expected
    with pytest.raises(SessionKeyError):
        ratchet.advance_to(0)
    ratchet.advance_to(5)
    assert ratchet.epoch == 5
    ratchet.close()
    assert ratchet.closed and ratchet._key == bytearray(32)
    with pytest.raises(SessionKeyError):
        ratchet.key_copy()
    assert "epoch=5" in repr(ratchet) and primary.hex() not in repr(ratchet)


@given(
    a=st.tuples(
        st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20), st.integers(0, 9)
    ),
    b=st.tuples(
        st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20), st.integers(0, 9)
    ),
)
def test_contexts_never_collide(a: tuple[str, str, int], b: tuple[str, str, int]) -> None:
    if a != b:
        assert context_info(*a) != context_info(*b)
    assert context_info(*a) != context_info(*a, ratchet=True)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(SessionKeyError):
        derive_session_key(b"k" * 32, salt=b"short", identity="u", session_id="s")
    with pytest.raises(SessionKeyError):
        context_info("", "s", 0)
    with pytest.raises(SessionKeyError):
        context_info("u", "s", -1)
    with pytest.raises(SessionKeyError):
        hkdf_sha256(b"k", salt=None, info=b"", length=0)

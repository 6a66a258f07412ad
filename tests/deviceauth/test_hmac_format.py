"""The HMAC token codec on its own (sans-I/O): round trips, canonical parsing of anything a
client may send, and the MAC function against Wycheproof's HMAC-SHA256 vectors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devicetrust.deviceauth.errors import TokenMalformed
from devicetrust.deviceauth.hmac_format import (
    MAX_KEY_VERSION,
    decode_token,
    encode_token,
    mac_matches,
    token_mac,
)
from devicetrust.domain import new_physical_id
from tests.vectors import wycheproof_cases

KEY = bytes(range(32))

physical_ids = st.uuids(version=4).map(str)
resources = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~:/-",
    min_size=1,
    max_size=200,
)
nonces = st.none() | st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
    min_size=16,
    max_size=64,
)


def test_known_answer_from_the_format_docs() -> None:
    """The example of `hmac_format` and docs/authentication.md (key: 32 bytes of 0x0b)."""
    token = encode_token(
        b"\x0b" * 32,
        "c2c38155-b0d2-48b6-82fd-22fe3b316224",
        1,
        "mqtt.example.com",
        1795000000,
        "q1w2e3r4t5y6u7i8",
    )
    assert token == (
        "v=dt1&id=c2c38155-b0d2-48b6-82fd-22fe3b316224&kv=1&sr=mqtt.example.com"
        "&se=1795000000&n=q1w2e3r4t5y6u7i8&sig=L2l74q4kzkvDNSSsql-U2OWGq9ggEXeD4aUV3_JoOGk"
    )


@given(
    physical_id=physical_ids,
    version=st.integers(1, MAX_KEY_VERSION),
    resource=resources,
    expires=st.integers(1, 10**11 - 1),
    nonce=nonces,
)
def test_round_trip(
    physical_id: str, version: int, resource: str, expires: int, nonce: str | None
) -> None:
    token = encode_token(KEY, physical_id, version, resource, expires, nonce)
    parsed = decode_token(token)
    assert (parsed.physical_id, parsed.key_version, parsed.resource) == (
        physical_id,
        version,
        resource,
    )
    assert (parsed.expires, parsed.nonce) == (expires, nonce)
    assert mac_matches(KEY, parsed.signed, parsed.mac)
    assert token == f"{parsed.signed.decode()}&sig={token.rpartition('&sig=')[2]}"


@settings(max_examples=300)
@given(st.text(max_size=600) | st.binary(max_size=600) | st.integers() | st.none())
def test_anything_else_is_malformed_or_a_canonical_token(value: Any) -> None:
    try:
        parsed = decode_token(value)
    except TokenMalformed as exc:
        assert exc.code == "auth.token_malformed"
        return
    # Whatever parses re-encodes to the same bytes: one token, one signed string.
    assert isinstance(value, str)
    assert value.startswith(parsed.signed.decode() + "&sig=")


@given(position=st.integers(0, 200), char=st.sampled_from("&=%+ \n\x00é.A0"))
def test_single_character_edits_never_verify(position: int, char: str) -> None:
    token = encode_token(KEY, new_physical_id(), 3, "mqtt.example.com", 1795000000, "n" * 16)
    index = position % len(token)
    edited = token[:index] + char + token[index + 1 :]
    if edited == token:
        return
    try:
        parsed = decode_token(edited)
    except TokenMalformed:
        return
    assert not mac_matches(KEY, parsed.signed, parsed.mac)


@pytest.mark.parametrize(
    "token",
    [
        "v=dt1&id={pid}&kv=01&sr=a&se=1795000000&sig={sig}",  # leading zero
        "v=dt1&id={pid}&kv=1&sr=a&se=1795000000&sig={sig}=",  # padding
        "v=dt1&kv=1&id={pid}&sr=a&se=1795000000&sig={sig}",  # field order
        "v=dt1&id={pid}&kv=1&sr=a&se=1795000000&n=short&sig={sig}",  # nonce too short
        "v=dt2&id={pid}&kv=1&sr=a&se=1795000000&sig={sig}",  # unknown version
        "v=dt1&id={PID}&kv=1&sr=a&se=1795000000&sig={sig}",  # upper-case id
        "v=dt1&id={pid}&kv=1&sr=a b&se=1795000000&sig={sig}",  # space in resource
        "v=dt1&id={pid}&kv=2147483648&sr=a&se=1795000000&sig={sig}",  # version too big
        "v=dt1&id={pid}&kv=1&sr=a&se=1795000000&sig={badsig}",  # non-canonical tail
        "v=dt1&id={pid}&kv=1&sr=a&se=1795000000&sig={sig}&x=1",  # trailing field
    ],
)
def test_non_canonical_tokens_are_malformed(token: str) -> None:
    pid = new_physical_id()
    sig = "A" * 43
    text = token.format(pid=pid, PID=pid.upper(), sig=sig, badsig="A" * 42 + "B")
    with pytest.raises(TokenMalformed):
        decode_token(text)


def test_encode_refuses_what_decode_would_refuse() -> None:
    with pytest.raises(ValueError):
        encode_token(KEY, "not-a-uuid", 1, "a", 1795000000)
    with pytest.raises(ValueError):
        encode_token(KEY, new_physical_id(), 0, "a", 1795000000)
    with pytest.raises(ValueError):
        encode_token(KEY, new_physical_id(), 1, "a", 1795000000, nonce="short")
    token = encode_token(KEY, new_physical_id(), 1, "a", datetime(2026, 1, 1, tzinfo=UTC))
    assert decode_token(token).expires == 1767225600


@pytest.mark.parametrize(
    ("group", "case"),
    wycheproof_cases("hmac_sha256_test.json"),
    ids=lambda v: str(v.get("tcId", "")) if isinstance(v, dict) else "",
)
def test_wycheproof_hmac_sha256(group: dict[str, Any], case: dict[str, Any]) -> None:
    """Every case through the format's MAC: valid full-length tags match; truncated tags
    (tagSize 128) are not part of the format, so even valid ones never match."""
    key, msg, tag = (bytes.fromhex(case[k]) for k in ("key", "msg", "tag"))
    full_tag = group["tagSize"] == 256
    computed = token_mac(key, msg)
    assert (computed[: len(tag)] == tag) == (case["result"] == "valid")
    assert mac_matches(key, msg, tag) == (case["result"] == "valid" and full_tag)

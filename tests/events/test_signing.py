"""Webhook signatures: known-answer HMAC vectors, sign/verify round trips, and every refusal."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devicetrust.events.signing import SignatureError, hmac_sha256, sign, verify
from tests.vectors import wycheproof

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
SECRET = "whsec_c2VjcmV0LWZvci10ZXN0cy1vbmx5LW5vdC1yZWFsLTMyYg"
BODY = b'{"id":"e1","type":"device.replaced"}'

# RFC 4231 §4.2-4.8: HMAC-SHA-256 test cases 1-7, typed in from the RFC.
# (key hex, data hex, expected MAC hex; case 5 is truncated to 128 bits)
RFC4231 = [
    (
        "0b" * 20,
        b"Hi There".hex(),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    ),
    (
        b"Jefe".hex(),
        b"what do ya want for nothing?".hex(),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        "aa" * 20,
        "dd" * 50,
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    ),
    (
        "0102030405060708090a0b0c0d0e0f10111213141516171819",
        "cd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    ("0c" * 20, b"Test With Truncation".hex(), "a3b6167473100ee06e0c796c2955552b"),
    (
        "aa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First".hex(),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        "aa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size "
        b"data. The key needs to be hashed before being used by the HMAC algorithm.".hex(),
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]


@pytest.mark.parametrize(("key", "data", "mac"), RFC4231, ids=[f"case{i}" for i in range(1, 8)])
def test_rfc4231_hmac_sha256(key: str, data: str, mac: str) -> None:
    computed = hmac_sha256(bytes.fromhex(key), bytes.fromhex(data))
    assert computed[: len(mac) // 2].hex() == mac


def _wycheproof_hmac() -> list[Any]:
    suite = wycheproof("hmac_sha256_test.json")
    return [
        pytest.param(group["tagSize"], case, id=f"tc{case['tcId']}")
        for group in suite["testGroups"]
        for case in group["tests"]
    ]


@pytest.mark.parametrize(("tag_bits", "case"), _wycheproof_hmac())
def test_wycheproof_hmac_sha256(tag_bits: int, case: dict[str, Any]) -> None:
    computed = hmac_sha256(bytes.fromhex(case["key"]), bytes.fromhex(case["msg"]))
    matches = computed[: tag_bits // 8] == bytes.fromhex(case["tag"])
    assert matches is (case["result"] == "valid")


def test_signature_round_trip_returns_the_signing_time() -> None:
    header = sign(SECRET, BODY, NOW)
    assert header.startswith(f"t={int(NOW.timestamp())},v1=")
    assert verify(SECRET, header, BODY, now=NOW + timedelta(seconds=30)) == NOW


def test_signature_matches_the_documented_construction() -> None:
    header = sign(SECRET, BODY, NOW)
    unix = int(NOW.timestamp())
    expected = hmac_sha256(SECRET.encode(), f"{unix}.".encode() + BODY).hex()
    assert header == f"t={unix},v1={expected}"


@pytest.mark.parametrize(
    ("secret", "body"),
    [("whsec_other", BODY), (SECRET, BODY + b" "), (SECRET, b"")],
    ids=["wrong-secret", "body-altered", "body-empty"],
)
def test_wrong_secret_or_altered_body_is_invalid(secret: str, body: bytes) -> None:
    header = sign(SECRET, BODY, NOW)
    with pytest.raises(SignatureError) as err:
        verify(secret, header, body, now=NOW)
    assert err.value.code == "webhook.signature_invalid"


def test_altered_timestamp_is_invalid_not_expired() -> None:
    header = sign(SECRET, BODY, NOW)
    replayed = header.replace(f"t={int(NOW.timestamp())}", f"t={int(NOW.timestamp()) + 600}")
    with pytest.raises(SignatureError) as err:
        verify(SECRET, replayed, BODY, now=NOW + timedelta(seconds=600))
    assert err.value.code == "webhook.signature_invalid"


def test_old_signature_is_expired_and_future_one_refused() -> None:
    header = sign(SECRET, BODY, NOW)
    assert verify(SECRET, header, BODY, now=NOW + timedelta(minutes=5)) == NOW
    with pytest.raises(SignatureError) as err:
        verify(SECRET, header, BODY, now=NOW + timedelta(minutes=5, seconds=1))
    assert err.value.code == "webhook.signature_expired"
    with pytest.raises(SignatureError) as err:
        verify(SECRET, header, BODY, now=NOW - timedelta(minutes=6))
    assert err.value.code == "webhook.signature_from_future"
    assert verify(SECRET, header, BODY, now=NOW + timedelta(hours=1), tolerance=timedelta(hours=2))


def test_rotation_either_secret_verifies_and_unknown_schemes_are_ignored() -> None:
    header = sign("whsec_new", BODY, NOW, previous=["whsec_old"])
    assert header.count("v1=") == 2
    assert verify("whsec_new", header, BODY, now=NOW) == NOW
    assert verify("whsec_old", header, BODY, now=NOW) == NOW
    assert verify(b"whsec_old", f"{header},v0=abc,v2=zz", BODY, now=NOW) == NOW


MAC = "ab" * 32


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        f"v1={MAC}",
        "t=1764057600",
        f"t=1764057600,t=1764057601,v1={MAC}",
        f"t=-5,v1={MAC}",
        f"t=17.5,v1={MAC}",
        "t=1764057600,v1=XYZ",
        f"t=1764057600,v1={MAC.upper()}",
        f"t=1764057600,v1={MAC}00",
        f"t=1764057600;v1={MAC}",
        f"t=1764057600,={MAC}",
        f"t=1764057600,v1={MAC}," + ",".join([f"v1={MAC}"] * 8),
        "t=1764057600," + "x" * 5000,
    ],
)
def test_malformed_headers_are_refused(header: str | None) -> None:
    with pytest.raises(SignatureError) as err:
        verify(SECRET, header, BODY, now=NOW)
    assert err.value.code == "webhook.signature_malformed"


@given(
    body=st.binary(max_size=512),
    secret=st.text(min_size=1, max_size=64),
    skew=st.integers(-300, 300),
)
def test_any_body_and_secret_round_trip(body: bytes, secret: str, skew: int) -> None:
    header = sign(secret, body, NOW)
    assert verify(secret, header, body, now=NOW + timedelta(seconds=skew)) == NOW


def test_signing_imports_without_server_dependencies() -> None:
    """A webhook receiver imports the verifier without SQLAlchemy, httpx or FastAPI."""
    code = (
        "import sys\n"
        "for name in ('sqlalchemy', 'httpx', 'fastapi', 'psycopg', 'alembic'):\n"
        "    sys.modules[name] = None\n"
        "from devicetrust.events.signing import verify, sign\n"
        "from devicetrust.events import SIGNATURE_HEADER, SignatureError\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"

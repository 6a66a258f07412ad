"""EST (RFC 7030): the sans-I/O codec, and the `/.well-known/est/` routes through TestClient
on both database backends (cacerts, csrattrs, simpleenroll/simplereenroll with Basic and
Bearer token authentication, refusals audited with no state change, malformed bodies)."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from sqlalchemy import select

from devicetrust.api import create_app
from devicetrust.domain import FixedClock
from devicetrust.identity import UnitSpec
from devicetrust.provisioning import Allocation, AllocationPolicy, encode_token
from devicetrust.provisioning.est import (
    EstBodyInvalid,
    certificates_of,
    decode_certs_only,
    decode_csr,
    decode_csrattrs,
    encode_certs_only,
    encode_csrattrs,
    parse_basic,
    parse_bearer,
    wrap_base64,
)
from devicetrust.runtime import Platform, Settings
from devicetrust.runtime.settings import DatabaseSettings
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow
from devicetrust.vault import Vault
from tests.conftest import snapshot_tables
from tests.provisioning.conftest import csr_for, new_key
from tests.software_keys import allow_software_keys

EST = "/.well-known/est"
POOL = Allocation(AllocationPolicy.POOL, pool_pattern="est-{01..09}")
MANUAL = Allocation(AllocationPolicy.MANUAL)
PKCS10 = {"Content-Type": "application/pkcs10"}

# ---- codec ---------------------------------------------------------------------------------


def _der_csr() -> bytes:
    pem = csr_for(new_key())
    return x509.load_pem_x509_csr(pem).public_bytes(Encoding.DER)


def test_csr_base64_with_line_breaks_and_pem_decode_to_der() -> None:
    der = _der_csr()
    assert decode_csr(base64.b64encode(der)) == der
    assert decode_csr(wrap_base64(der, 76, b"\r\n")) == der  # CRLF every 76 characters
    assert decode_csr(base64.encodebytes(der)) == der  # LF
    pem = x509.load_der_x509_csr(der).public_bytes(Encoding.PEM)
    assert decode_csr(pem) == der


@pytest.mark.parametrize(
    "body",
    [b"", b"not base64 !!", base64.b64encode(b"\x30\x03\x02\x01\x01"), b"A" * 70_000],
)
def test_garbage_csr_is_a_typed_error(body: bytes) -> None:
    with pytest.raises(EstBodyInvalid) as err:
        decode_csr(body)
    assert err.value.code == "est.malformed_body"
    assert err.value.status == 400


def test_certs_only_round_trip_in_base64_lines(platform: Platform) -> None:
    chain = certificates_of(platform.pki.chain_pem())
    body = encode_certs_only(chain)
    lines = body.split(b"\n")
    assert lines[-1] == b"" and all(0 < len(line) <= 64 for line in lines[:-1])
    assert set(decode_certs_only(body)) == set(chain)  # a DER SET OF: order not kept
    with pytest.raises(ValueError):
        encode_certs_only([])
    with pytest.raises(EstBodyInvalid):
        decode_certs_only(b"bm90IHBrY3M3")


def test_csrattrs_round_trip() -> None:
    assert base64.b64decode(encode_csrattrs()) == b"\x30\x00"
    oids = ["1.2.840.10045.4.3.2", "2.5.4.5"]
    assert decode_csrattrs(encode_csrattrs(oids)) == oids
    with pytest.raises(EstBodyInvalid):
        decode_csrattrs(b"AQID")


def test_authorization_headers() -> None:
    basic = "Basic " + base64.b64encode(b"unit-1:tok.en").decode()
    assert parse_basic(basic) == ("unit-1", "tok.en")
    assert parse_basic("Basic !!") is None
    assert parse_basic("Basic " + base64.b64encode(b"no-colon").decode()) is None
    assert parse_basic("Bearer x") is None
    assert parse_bearer("Bearer abc.def") == "abc.def"
    assert parse_bearer("Basic abc") is None


# ---- routes --------------------------------------------------------------------------------


@pytest.fixture
def platform(db: Database, clock: FixedClock, tmp_path: Path) -> Iterator[Platform]:
    settings = Settings(data_dir=tmp_path / "data", database=DatabaseSettings(url=db.url))
    # The `db` fixture is at head already: skip Platform's (no-op) upgrade on every test.
    vault = Vault.from_key(os.urandom(32))
    built = Platform(settings, clock=clock, vault=vault, migrate=False)
    built.pki.init_hierarchy(actor="test")
    allow_software_keys(built.policy)
    yield built
    built.close()


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform)) as test_client:
        yield test_client


def _unit(platform: Platform) -> str:
    return platform.identity.register(UnitSpec("arm-r7", {}), actor="factory").physical_id


def _token(platform: Platform, clock: FixedClock, pid: str, group: str = "line-est") -> str:
    key = platform.provisioning.enrollments.derive_device_key(group, pid)
    return encode_token(key, pid, clock.now() + timedelta(minutes=5), secrets.token_urlsafe(16))


def _basic(pid: str, token: str) -> dict[str, str]:
    credential = base64.b64encode(f"{pid}:{token}".encode()).decode()
    return {**PKCS10, "Authorization": f"Basic {credential}"}


def _csr_body() -> bytes:
    return wrap_base64(_der_csr(), 64)


def _last_audit(db: Database) -> AuditEntryRow:
    with db.read() as session:
        return session.execute(
            select(AuditEntryRow).order_by(AuditEntryRow.seq.desc()).limit(1)
        ).scalar_one()


def test_cacerts_is_the_chain_and_openssl_reads_it(client: TestClient, platform: Platform) -> None:
    answer = client.get(f"{EST}/cacerts")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/pkcs7-mime"
    assert answer.headers["content-transfer-encoding"] == "base64"
    assert set(decode_certs_only(answer.content)) == set(certificates_of(platform.pki.chain_pem()))
    if shutil.which("openssl") is not None:
        printed = subprocess.run(
            ["openssl", "pkcs7", "-inform", "DER", "-print_certs"],
            input=base64.b64decode(answer.content),
            capture_output=True,
            check=True,
        )
        chain = platform.pki.chain_pem().encode()
        assert printed.stdout.count(b"BEGIN CERTIFICATE") == chain.count(b"BEGIN CERTIFICATE")


def test_csrattrs_is_an_empty_sequence(client: TestClient) -> None:
    answer = client.get(f"{EST}/csrattrs")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/csrattrs"
    assert decode_csrattrs(answer.content) == []


def test_simpleenroll_with_basic_then_reenroll_with_bearer(
    client: TestClient, platform: Platform, clock: FixedClock
) -> None:
    platform.provisioning.enrollments.create_symmetric_group("line-est", POOL, actor="op")
    pid = _unit(platform)
    answer = client.post(
        f"{EST}/simpleenroll",
        content=_csr_body(),
        headers=_basic(pid, _token(platform, clock, pid)),
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pkcs7-mime; smime-type=certs-only"
    assert answer.headers["content-transfer-encoding"] == "base64"
    (issued,) = decode_certs_only(answer.content)
    record = platform.pki.get_certificate(issued.serial_number)
    assert record.physical_id == pid
    issuing = certificates_of(platform.pki.chain_pem())[0]
    issued.verify_directly_issued_by(issuing)
    again = client.post(
        f"{EST}/simplereenroll",
        content=_csr_body(),
        headers={**PKCS10, "Authorization": f"Bearer {_token(platform, clock, pid)}"},
    )
    assert again.status_code == 200, again.text
    (renewed,) = decode_certs_only(again.content)
    assert renewed.serial_number != issued.serial_number
    assert platform.pki.get_certificate(renewed.serial_number).physical_id == pid
    assert platform.provisioning.registration(pid).logical_name == "est-01"


def test_wrong_or_missing_token_is_401_audited_and_changes_nothing(
    client: TestClient, platform: Platform, clock: FixedClock, db: Database
) -> None:
    platform.provisioning.enrollments.create_symmetric_group("line-est", POOL, actor="op")
    pid = _unit(platform)
    wrong = encode_token(bytes(32), pid, clock.now() + timedelta(minutes=5), "n" * 16)
    before = snapshot_tables(db)
    answer = client.post(f"{EST}/simpleenroll", content=_csr_body(), headers=_basic(pid, wrong))
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Basic realm="devicetrust EST"'
    assert answer.json()["code"] == "provisioning.token_invalid"
    after = snapshot_tables(db)
    for table in before:
        if table not in ("audit_log", "audit_head"):
            assert after[table] == before[table], table
    assert len(after["audit_log"]) == len(before["audit_log"]) + 1
    last = _last_audit(db)
    assert (last.action, last.details["code"]) == (
        "provisioning.refused",
        "provisioning.token_invalid",
    )
    for headers in (PKCS10, {**PKCS10, "Authorization": "Bearer not-a-token"}):
        missing = client.post(f"{EST}/simpleenroll", content=_csr_body(), headers=headers)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Basic realm="devicetrust EST"'


def test_replayed_token_is_refused(
    client: TestClient, platform: Platform, clock: FixedClock
) -> None:
    platform.provisioning.enrollments.create_symmetric_group("line-est", POOL, actor="op")
    pid = _unit(platform)
    headers = _basic(pid, _token(platform, clock, pid))
    assert client.post(f"{EST}/simpleenroll", content=_csr_body(), headers=headers).is_success
    replay = client.post(f"{EST}/simpleenroll", content=_csr_body(), headers=headers)
    assert replay.status_code == 401
    assert replay.json()["code"] == "provisioning.token_replayed"


def test_malformed_body_is_400_audited_and_the_token_stays_usable(
    client: TestClient, platform: Platform, clock: FixedClock, db: Database
) -> None:
    platform.provisioning.enrollments.create_symmetric_group("line-est", POOL, actor="op")
    pid = _unit(platform)
    headers = _basic(pid, _token(platform, clock, pid))
    before = snapshot_tables(db)
    answer = client.post(f"{EST}/simpleenroll", content=b"%%% not base64 %%%", headers=headers)
    assert answer.status_code == 400
    assert answer.json()["code"] == "est.malformed_body"
    assert _last_audit(db).action == "provisioning.refused"
    after = snapshot_tables(db)
    for table in before:
        if table not in ("audit_log", "audit_head"):
            assert after[table] == before[table], table
    assert client.post(f"{EST}/simpleenroll", content=_csr_body(), headers=headers).is_success
    wrong_type = client.post(
        f"{EST}/simpleenroll",
        content=_csr_body(),
        headers={**headers, "Content-Type": "text/plain"},
    )
    assert wrong_type.status_code == 415


def test_manual_allocation_is_202_with_retry_after(
    client: TestClient, platform: Platform, clock: FixedClock
) -> None:
    platform.provisioning.enrollments.create_symmetric_group("line-est", MANUAL, actor="op")
    pid = _unit(platform)
    answer = client.post(
        f"{EST}/simpleenroll",
        content=_csr_body(),
        headers=_basic(pid, _token(platform, clock, pid)),
    )
    assert answer.status_code == 202
    assert int(answer.headers["retry-after"]) > 0
    assert answer.content == b""

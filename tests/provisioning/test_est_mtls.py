"""EST over HTTPS served the way `devicetrust serve` serves it (uvicorn with
`cli.server.tls_options`: `[server] tls_cert`, `tls_key`, `tls_client_certs = "optional"`),
driven by `curl` and `openssl` (cacerts, csrattrs, simpleenroll, simplereenroll): a unit
enrolls with a token, then re-enrolls with nothing but
its TLS client certificate (`curl --cert/--key`, RFC 7030 §3.3.2). A revoked certificate or a
birth certificate gets 401 (audited with the precise reason, nothing else changed), a
certificate from a foreign CA does not get through the handshake, and a malformed body with a
good certificate is a 400 that issues nothing.

The platform's clock is fixed at the time the test starts: curl and the server's TLS stack
check certificate validity against the real clock."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import select

from devicetrust.api import create_app
from devicetrust.api.tls import TlsH11Protocol
from devicetrust.cli.server import tls_options
from devicetrust.domain import FixedClock
from devicetrust.domain.clock import SystemClock
from devicetrust.domain.errors import ConfigurationError
from devicetrust.identity import UnitSpec
from devicetrust.pki import CaRole
from devicetrust.provisioning import Allocation, AllocationPolicy, encode_token
from devicetrust.runtime import Platform, Settings
from devicetrust.runtime.settings import DatabaseSettings, ServerSettings
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow
from devicetrust.vault import Vault
from tests.conftest import snapshot_tables
from tests.provisioning.conftest import birth_certificate, new_key
from tests.software_keys import allow_software_keys
from tests.uvicorn_thread import served_in_thread

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("curl") is None,
    reason="needs the openssl and curl CLIs",
)
AUDIT_TABLES = ("audit_log", "audit_head")
ENROLL = (
    "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout {key} "
    '-subj "/CN=$ID" -outform DER -out {key}.csr 2>/dev/null && base64 {key}.csr > {key}.b64'
)


def _sh(script: str, cwd: Path, env: dict[str, str], *, ok: bool = True) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env={**os.environ, **env, "no_proxy": "*"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if ok:
        assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"
    return done.stdout if ok else f"{done.returncode}:{done.stdout}"


@dataclass
class Est:
    platform: Platform
    url: str
    dir: Path
    clock: FixedClock

    def env(self, **more: str) -> dict[str, str]:
        return {"EST": self.url, **more}

    def sh(self, script: str, *, ok: bool = True, **env: str) -> str:
        return _sh(script, self.dir, self.env(**env), ok=ok)

    def post(self, path: str, body: str, *curl: str, **env: str) -> tuple[int, str]:
        """(status, body) of a POST with curl, trusting the server certificate."""
        out = _sh(
            f"curl -s --cacert server.pem -o out.txt -w '%{{http_code}}' {' '.join(curl)} "
            f"--data-binary @{body} -H 'Content-Type: application/pkcs10' \"$EST/{path}\"",
            self.dir,
            self.env(**env),
        )
        return int(out), (self.dir / "out.txt").read_text()


@pytest.fixture
def est(db: Database, tmp_path: Path) -> Iterator[Est]:
    _sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
        "-keyout server.key -out server.pem -subj /CN=127.0.0.1 "
        "-addext subjectAltName=IP:127.0.0.1 2>/dev/null",
        tmp_path,
        {},
    )
    clock = FixedClock(SystemClock().now())
    settings = Settings(
        data_dir=tmp_path / "data",
        database=DatabaseSettings(url=db.url),
        server=ServerSettings(
            tls_cert=tmp_path / "server.pem",
            tls_key=tmp_path / "server.key",
            tls_client_certs="optional",
        ),
    )
    platform = Platform(settings, clock=clock, vault=Vault.from_key(os.urandom(32)))
    platform.pki.init_hierarchy(actor="test")
    allow_software_keys(platform.policy)
    try:
        with served_in_thread(create_app(platform), **tls_options(platform)) as port:
            yield Est(platform, f"https://127.0.0.1:{port}/.well-known/est", tmp_path, clock)
    finally:
        platform.close()


def _enrolled_unit(est: Est) -> str:
    """A unit enrolled over EST with a token: device.key and device.pem in est.dir."""
    enrollments = est.platform.provisioning.enrollments
    enrollments.create_symmetric_group(
        "line-est", Allocation(AllocationPolicy.POOL, pool_pattern="est-{01..09}"), actor="op"
    )
    pid = est.platform.identity.register(UnitSpec("arm-r7", {}), actor="factory").physical_id
    key = enrollments.derive_device_key("line-est", pid)
    token = encode_token(
        key, pid, est.clock.now() + timedelta(minutes=5), secrets.token_urlsafe(16)
    )
    est.sh(ENROLL.format(key="device.key"), ID=pid)
    status, body = est.post(
        "simpleenroll", "device.key.b64", '-u "$ID:$TOKEN"', ID=pid, TOKEN=token
    )
    assert status == 200, body
    est.sh("base64 -d out.txt | openssl pkcs7 -inform DER -print_certs -out device.pem")
    return pid


def _last_audit(db: Database) -> AuditEntryRow:
    with db.read() as session:
        return session.execute(
            select(AuditEntryRow).order_by(AuditEntryRow.seq.desc()).limit(1)
        ).scalar_one()


def _refused_once(db: Database, before: dict[str, list[tuple[object, ...]]], code: str) -> None:
    after = snapshot_tables(db)
    for table, rows in before.items():
        if table not in AUDIT_TABLES:
            assert after[table] == rows, table
    assert len(after["audit_log"]) == len(before["audit_log"]) + 1
    last = _last_audit(db)
    assert (last.action, last.details["code"]) == ("provisioning.refused", code)
    assert last.details["method"] == "est-certificate"


def test_reenroll_with_the_tls_client_certificate(est: Est, db: Database) -> None:
    pid = _enrolled_unit(est)
    old = x509.load_pem_x509_certificate((est.dir / "device.pem").read_bytes())
    est.sh(ENROLL.format(key="next.key"), ID=pid)

    status, body = est.post("simplereenroll", "next.key.b64", "--cert device.pem --key device.key")

    assert status == 200, body
    est.sh(
        "base64 -d out.txt | openssl pkcs7 -inform DER -print_certs -out renewed.pem && "
        'curl -sf --cacert server.pem "$EST/cacerts" | base64 -d '
        "| openssl pkcs7 -inform DER -print_certs -out chain.pem && "
        "openssl verify -CAfile chain.pem renewed.pem"
    )
    attrs = est.sh(
        'curl -sf --cacert server.pem "$EST/csrattrs" | base64 -d | openssl asn1parse -inform DER'
    )
    assert "SEQUENCE" in attrs and "l=   0" in attrs  # nothing asked: names come from the registry
    renewed = x509.load_pem_x509_certificate((est.dir / "renewed.pem").read_bytes())
    assert renewed.serial_number != old.serial_number
    assert renewed.subject == old.subject
    assert (
        renewed.public_key()
        == x509.load_der_x509_csr((est.dir / "next.key.csr").read_bytes()).public_key()
    )
    record = est.platform.pki.get_certificate(renewed.serial_number)
    assert record.renewed_from == old.serial_number
    assert record.physical_id == pid


def test_a_revoked_certificate_does_not_reenroll(est: Est, db: Database) -> None:
    pid = _enrolled_unit(est)
    old = x509.load_pem_x509_certificate((est.dir / "device.pem").read_bytes())
    est.platform.pki.revoke(old.serial_number, "keyCompromise", actor="op")
    est.sh(ENROLL.format(key="next.key"), ID=pid)
    before = snapshot_tables(db)

    status, body = est.post("simplereenroll", "next.key.b64", "--cert device.pem --key device.key")

    assert status == 401
    assert '"code":"auth.cert_refused"' in body.replace(" ", "")
    _refused_once(db, before, "auth.cert_revoked")


def test_a_birth_certificate_does_not_reenroll(est: Est, db: Database) -> None:
    pid = est.platform.identity.register(UnitSpec("arm-r7", {}), actor="factory").physical_id
    key = new_key()
    birth = birth_certificate(est.platform.pki, pid, key)
    manufacturing = est.platform.pki.active_ca(CaRole.MANUFACTURING)
    (est.dir / "birth.pem").write_text(birth + manufacturing.pem)  # passes the handshake
    (est.dir / "birth.key").write_bytes(
        key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    est.sh(ENROLL.format(key="next.key"), ID=pid)
    before = snapshot_tables(db)

    status, _ = est.post("simplereenroll", "next.key.b64", "--cert birth.pem --key birth.key")

    assert status == 401
    _refused_once(db, before, "auth.cert_untrusted")


def test_a_foreign_certificate_fails_the_handshake(est: Est, db: Database) -> None:
    est.sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
        "-keyout foreign.key -out foreign.pem -subj /CN=foreign 2>/dev/null"
    )
    est.sh(ENROLL.format(key="next.key"), ID="foreign")
    before = snapshot_tables(db)

    failed = est.sh(
        "curl -s --cacert server.pem --cert foreign.pem --key foreign.key "
        "--data-binary @next.key.b64 -H 'Content-Type: application/pkcs10' "
        '"$EST/simplereenroll"',
        ok=False,
    )

    assert not failed.startswith("0:")  # curl: the TLS handshake was refused
    assert snapshot_tables(db) == before


def test_a_malformed_body_with_a_good_certificate_issues_nothing(est: Est, db: Database) -> None:
    _enrolled_unit(est)
    (est.dir / "junk.b64").write_text("not base64 !!")
    before = snapshot_tables(db)

    status, body = est.post("simplereenroll", "junk.b64", "--cert device.pem --key device.key")

    assert status == 400
    assert '"code":"est.malformed_body"' in body.replace(" ", "")
    _refused_once(db, before, "pki.csr_malformed")


def test_without_certificate_or_token_reenroll_asks_for_a_credential(est: Est) -> None:
    est.sh(ENROLL.format(key="next.key"), ID="nobody")
    status, body = est.post("simplereenroll", "next.key.b64")
    assert status == 401
    assert '"code":"est.credential_missing"' in body.replace(" ", "")


def test_client_certificates_need_a_ca_and_plain_http_needs_no_tls(
    db: Database, tmp_path: Path
) -> None:
    plain = Platform(
        Settings(data_dir=tmp_path / "plain", database=DatabaseSettings(url=db.url)),
        vault=Vault.from_key(os.urandom(32)),
    )
    try:
        assert tls_options(plain) == {"http": TlsH11Protocol}  # no TLS; slowloris timeout
    finally:
        plain.close()
    settings = Settings(
        data_dir=tmp_path / "data",
        database=DatabaseSettings(url=db.url),
        server=ServerSettings(
            tls_cert=tmp_path / "server.pem",
            tls_key=tmp_path / "server.key",
            tls_client_certs="optional",
        ),
    )
    platform = Platform(settings, vault=Vault.from_key(os.urandom(32)))
    try:
        with pytest.raises(ConfigurationError) as err:  # before `devicetrust ca init`
            tls_options(platform)
        assert err.value.code == "config.tls_client_ca_missing"
    finally:
        platform.close()

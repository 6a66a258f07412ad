"""EST with clients we did not write: the real `curl` and `openssl` against a real HTTP server
(uvicorn in a thread on a free 127.0.0.1 port), with exactly the commands of the README:
cacerts, a CSR made by `openssl req`, simpleenroll with HTTP Basic (physical id, token),
and `openssl verify` of the issued certificate against the CA chain."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from devicetrust.api import create_app
from devicetrust.domain import FixedClock
from devicetrust.identity import UnitSpec
from devicetrust.provisioning import Allocation, AllocationPolicy, encode_token
from devicetrust.runtime import Platform, Settings
from devicetrust.runtime.settings import DatabaseSettings
from devicetrust.store.database import Database
from devicetrust.vault import Vault
from tests.software_keys import allow_software_keys
from tests.uvicorn_thread import served_in_thread

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("curl") is None,
    reason="needs the openssl and curl CLIs",
)


@pytest.fixture
def platform(db: Database, clock: FixedClock, tmp_path: Path) -> Iterator[Platform]:
    settings = Settings(data_dir=tmp_path / "data", database=DatabaseSettings(url=db.url))
    built = Platform(settings, clock=clock, vault=Vault.from_key(os.urandom(32)))
    built.pki.init_hierarchy(actor="test")
    allow_software_keys(built.policy)
    yield built
    built.close()


@pytest.fixture
def base_url(platform: Platform) -> Iterator[str]:
    with served_in_thread(create_app(platform)) as port:
        yield f"http://127.0.0.1:{port}"


def _sh(script: str, cwd: Path, **env: str) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env={**os.environ, **env, "no_proxy": "*"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_curl_and_openssl_enroll_over_est(
    base_url: str, platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    platform.provisioning.enrollments.create_symmetric_group(
        "line-est", Allocation(AllocationPolicy.POOL, pool_pattern="est-{01..09}"), actor="op"
    )
    pid = platform.identity.register(UnitSpec("arm-r7", {}), actor="factory").physical_id
    key = platform.provisioning.enrollments.derive_device_key("line-est", pid)
    token = encode_token(key, pid, clock.now() + timedelta(minutes=5), secrets.token_urlsafe(16))
    env = {"EST": f"{base_url}/.well-known/est", "ID": pid, "TOKEN": token}
    at = str(int(clock.now().timestamp()))  # the server's clock is fixed in the test

    cacerts = _sh(
        'curl -sf "$EST/cacerts" | base64 -d | openssl pkcs7 -inform DER -print_certs '
        "-out chain.pem && cat chain.pem",
        tmp_path,
        **env,
    )
    assert cacerts.count("BEGIN CERTIFICATE") == 2
    _sh(
        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout device.key "
        '-subj "/CN=$ID" -outform DER -out csr.der 2>/dev/null && base64 csr.der > csr.b64',
        tmp_path,
        **env,
    )
    issued = _sh(
        "curl -sf --data-binary @csr.b64 -H 'Content-Type: application/pkcs10' "
        '-u "$ID:$TOKEN" "$EST/simpleenroll" | base64 -d '
        "| openssl pkcs7 -inform DER -print_certs -out device.pem && "
        "openssl x509 -in device.pem -noout -subject -ext subjectAltName && "
        f"openssl verify -attime {at} -CAfile chain.pem device.pem",
        tmp_path,
        **env,
    )
    assert "device.pem: OK" in issued
    assert pid in issued
    # re-enroll with a fresh token, as a Bearer credential this time
    fresh = encode_token(key, pid, clock.now() + timedelta(minutes=5), secrets.token_urlsafe(16))
    renewed = _sh(
        "curl -sf --data-binary @csr.b64 -H 'Content-Type: application/pkcs10' "
        '-H "Authorization: Bearer $FRESH" "$EST/simplereenroll" | base64 -d '
        "| openssl pkcs7 -inform DER -print_certs -out renewed.pem && "
        f"openssl verify -attime {at} -CAfile chain.pem renewed.pem",
        tmp_path,
        **env,
        FRESH=fresh,
    )
    assert "renewed.pem: OK" in renewed
    # the first token again: refused with the RFC 7030 challenge
    replay = _sh(
        "curl -s -o /dev/null -D - --data-binary @csr.b64 -H 'Content-Type: application/pkcs10' "
        '-u "$ID:$TOKEN" "$EST/simpleenroll" | tr -d "\\r"',
        tmp_path,
        **env,
    )
    assert replay.startswith("HTTP/1.1 401")
    assert 'www-authenticate: Basic realm="devicetrust EST"' in replay.splitlines()

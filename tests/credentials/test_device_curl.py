"""`GET /v1/device/me` served the way `devicetrust serve` serves it (uvicorn over HTTPS with
`cli.server.tls_options`, `tls_client_certs = "optional"`), called by clients we did not
write: `curl --cert/--key` with the device certificate, curl with a Bearer JWT (PyJWT), and
curl with an HMAC token made by nothing but `openssl` (the recipe in docs/authentication.md).
Refusals -- revoked certificate, suspended unit, HMAC not allowed by the policy, expired
token, wrong audience -- each get the generic problem and an audit entry with the precise
code.

The platform's clock is fixed at the time the test starts: curl and the server's TLS stack
check certificate validity against the real clock."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from devicetrust.api import create_app
from devicetrust.cli.server import tls_options
from devicetrust.deviceauth import PUBLIC_MESSAGE
from devicetrust.domain import DeviceState, FixedClock
from devicetrust.domain.clock import SystemClock
from devicetrust.runtime import Platform, Settings
from devicetrust.runtime.settings import DatabaseSettings, ServerSettings
from devicetrust.store.database import Database
from devicetrust.vault import Vault
from tests.conftest import free_port
from tests.credentials.conftest import (
    ACTOR,
    NAME,
    active_unit,
    allow_hmac,
    device_certificate,
    device_jwt,
    refusal_codes,
    registered_key,
)
from tests.uvicorn_thread import served_in_thread

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("curl") is None,
    reason="needs the openssl and curl CLIs",
)
# docs/authentication.md, "HMAC identifier tokens", with sr = the API host.
OPENSSL_TOKEN = (
    'signed="v=dt1&id=$ID&kv=1&sr=127.0.0.1&se=$(( $(date +%s) + 600 ))'
    '&n=$(openssl rand -hex 12)"\n'
    'sig=$(printf %s "$signed" | openssl dgst -sha256 -mac HMAC -macopt hexkey:$KEY_HEX '
    "-binary | basenc --base64url | tr -d '=\\n')\n"
    'echo "$signed&sig=$sig"'
)


def _sh(script: str, cwd: Path, env: dict[str, str]) -> str:
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


@dataclass
class Served:
    platform: Platform
    url: str
    dir: Path
    pid: str
    clock: FixedClock

    def curl(self, *args: str, **env: str) -> tuple[int, dict[str, object]]:
        """(status, JSON body) of `GET /v1/device/me` with curl, trusting the server cert."""
        out = _sh(
            "curl -s --cacert server.pem -o out.json -w '%{http_code}' "
            f'{" ".join(args)} "$URL/v1/device/me"',
            self.dir,
            {"URL": self.url, **env},
        )
        return int(out), json.loads((self.dir / "out.json").read_text())

    def write_certificate(self) -> int:
        """The unit's certificate and key as device.pem / device.key; its serial."""
        issued, key = device_certificate(self.platform, self.pid)
        (self.dir / "device.pem").write_bytes(issued.certificate.public_bytes(Encoding.PEM))
        (self.dir / "device.key").write_bytes(
            key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        )
        return issued.serial


@pytest.fixture
def served(db: Database, tmp_path: Path) -> Iterator[Served]:
    _sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
        "-keyout server.key -out server.pem -subj /CN=127.0.0.1 "
        "-addext subjectAltName=IP:127.0.0.1 2>/dev/null",
        tmp_path,
        {},
    )
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    clock = FixedClock(SystemClock().now())
    settings = Settings(
        data_dir=tmp_path / "data",
        database=DatabaseSettings(url=db.url),
        server=ServerSettings(
            port=port,
            public_url=url,
            tls_cert=tmp_path / "server.pem",
            tls_key=tmp_path / "server.key",
            tls_client_certs="optional",
        ),
    )
    platform = Platform(settings, clock=clock, vault=Vault.from_key(os.urandom(32)))
    platform.pki.init_hierarchy(actor=ACTOR)
    pid = active_unit(platform)
    try:
        with served_in_thread(create_app(platform), port=port, **tls_options(platform)):
            yield Served(platform, url, tmp_path, pid, clock)
    finally:
        platform.close()


def _generic(status: int, body: dict[str, object], expected: int) -> None:
    assert status == expected, body
    assert body["detail"] == PUBLIC_MESSAGE
    assert body["code"] == {401: "auth.credential_refused", 403: "auth.device_forbidden"}[expected]


def test_curl_with_the_device_certificate(served: Served) -> None:
    serial = served.write_certificate()
    status, body = served.curl("--cert device.pem --key device.key")
    assert status == 200, body
    assert (body["physical_id"], body["logical_name"]) == (served.pid, NAME)
    assert body["method"] == "mtls" and int(str(body["credential_id"]), 16) == serial

    # Suspended: the certificate is still valid, the unit may not connect.
    served.platform.identity.set_state(served.pid, DeviceState.SUSPENDED, actor=ACTOR)
    _generic(*served.curl("--cert device.pem --key device.key"), 403)
    assert refusal_codes(served.platform.db)[-1] == "auth.unit_suspended"


def test_curl_with_a_revoked_certificate(served: Served) -> None:
    serial = served.write_certificate()
    served.platform.pki.revoke(serial, "keyCompromise", actor=ACTOR)
    _generic(*served.curl("--cert device.pem --key device.key"), 401)
    assert refusal_codes(served.platform.db)[-1] == "auth.cert_revoked"


def test_curl_with_a_bearer_jwt(served: Served) -> None:
    key = registered_key(served.platform, served.pid)
    token = device_jwt(served.platform, served.pid, key, audience=served.url)
    status, body = served.curl('-H "Authorization: Bearer $TOKEN"', TOKEN=token)
    assert status == 200, body
    assert (body["physical_id"], body["method"]) == (served.pid, "jwt")

    wrong = device_jwt(served.platform, served.pid, key, audience="https://elsewhere.example")
    _generic(*served.curl('-H "Authorization: Bearer $TOKEN"', TOKEN=wrong), 401)
    assert refusal_codes(served.platform.db)[-1] == "auth.token_wrong_audience"

    old = device_jwt(served.platform, served.pid, key, audience=served.url)
    served.clock.advance(timedelta(hours=2))
    _generic(*served.curl('-H "Authorization: Bearer $TOKEN"', TOKEN=old), 401)
    assert refusal_codes(served.platform.db)[-1] == "auth.token_expired"


def test_curl_with_an_hmac_token_made_by_openssl(served: Served) -> None:
    with served.platform.device_auth.token_keys.rotate(served.pid, actor=ACTOR) as shown:
        key_hex = bytes(shown.key).hex()
    token = _sh(OPENSSL_TOKEN, served.dir, {"ID": served.pid, "KEY_HEX": key_hex}).strip()
    sas = '-H "Authorization: SharedAccessSignature $TOKEN"'

    # The baseline does not allow HMAC tokens: 403 until an operator relaxes it, consciously.
    _generic(*served.curl(sas, TOKEN=token), 403)
    assert refusal_codes(served.platform.db)[-1] == "auth.method_not_allowed"

    allow_hmac(served.platform, served.pid)
    served.clock.advance(timedelta(seconds=10))  # past the policy-limits cache
    status, body = served.curl(sas, TOKEN=token)
    assert status == 200, body
    assert (body["physical_id"], body["method"]) == (served.pid, "hmac-token")
    # The token carried a nonce: a replay is refused.
    _generic(*served.curl(sas, TOKEN=token), 401)
    assert refusal_codes(served.platform.db)[-1] == "auth.token_replayed"

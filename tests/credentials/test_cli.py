"""`devicetrust credential ...` on a SQLite data directory: in-process through the real Typer
app for the flows, and through the real entry point (a subprocess) for refusals, whose exit
status and `error: ... [code]` line a script relies on. The unit, CA and enrollment are set
up through the services on the same data directory."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
)
from typer.testing import CliRunner

from devicetrust.cli.main import app
from devicetrust.deviceauth import encode_token, key_id_of, new_nonce
from devicetrust.domain.clock import SystemClock
from devicetrust.provisioning import Allocation, AllocationPolicy
from devicetrust.runtime import Platform, Settings
from devicetrust.vault import Vault, generate_kek_text
from tests.credentials.conftest import NAME, active_unit, device_certificate

RESOURCE = "api.example.com"
AUDIENCE = "https://api.example.com"


class Cli:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.kek = generate_kek_text()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DEVICETRUST_")} | {
            "DEVICETRUST_DATA_DIR": str(workdir / "data"),
            "DEVICETRUST_KEK": self.kek,
            "COLUMNS": "200",
        }

    def platform(self) -> Platform:
        settings = Settings(data_dir=self.workdir / "data")
        return Platform(settings, clock=SystemClock(), vault=Vault.from_encoded(self.kek))

    def run(self, *args: str) -> Any:
        done = CliRunner().invoke(app, list(args), env=self.env, catch_exceptions=False)
        assert done.exit_code == 0, done.output
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def refused(self, *args: str, status: int, code: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "devicetrust.cli.main", *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == status, done.stderr
        assert done.stdout == ""
        assert done.stderr.startswith("error: ") and done.stderr.rstrip().endswith(f"[{code}]")
        return done.stderr

    def dump(self) -> list[str]:
        with sqlite3.connect(self.workdir / "data" / "devicetrust.db") as conn:
            return list(conn.iterdump())


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def pid(cli: Cli) -> str:
    platform = cli.platform()
    try:
        platform.pki.init_hierarchy(actor="test")
        return active_unit(platform)
    finally:
        platform.close()


def test_token_key_rotate_list_revoke(cli: Cli, pid: str) -> None:
    shown = cli.json("credential", "token-key", "rotate", pid, "--overlap", "12h")
    assert shown["version"]["version"] == 1 and shown["version"]["origin"] == "generated"
    assert len(base64.urlsafe_b64decode(shown["key"] + "=")) == 32

    human = cli.run("credential", "token-key", "rotate", pid)
    key = human.stdout.strip().splitlines()[-1]
    assert len(base64.urlsafe_b64decode(key + "=")) == 32
    assert "shown only now" in human.stderr

    listed = cli.json("credential", "token-key", "list", pid)
    assert [v["version"] for v in listed] == [1, 2]
    assert listed[0]["retires_at"] is not None and "key" not in listed[0]
    assert shown["key"] not in json.dumps(listed)
    assert cli.run("credential", "token-key", "list", pid).exit_code == 0

    revoked = cli.json("credential", "token-key", "revoke", pid, "1")
    assert revoked["revoked_at"] is not None and revoked["destroyed"] is True


def test_adopt_the_group_key_and_verify_an_hmac_token(cli: Cli, pid: str) -> None:
    platform = cli.platform()
    try:
        enrollments = platform.provisioning.enrollments
        group = enrollments.create_symmetric_group(
            "line-03", Allocation(AllocationPolicy.MANUAL), actor="test"
        )
        group.key[:] = bytes(len(group.key))
        device_key = enrollments.derive_device_key("line-03", pid)
    finally:
        platform.close()
    adopted = cli.json("credential", "token-key", "adopt", pid, "--enrollment", "line-03")
    assert (adopted["version"], adopted["origin"]) == (1, "enrollment")

    def token() -> str:
        expiry = SystemClock().now() + timedelta(minutes=10)
        return encode_token(bytes(device_key), pid, 1, RESOURCE, expiry, new_nonce())

    # The baseline does not allow HMAC tokens: the verifier says so precisely.
    before = len(cli.dump())
    message = cli.refused(
        "credential",
        "verify",
        "--hmac",
        token(),
        "--resource",
        RESOURCE,
        status=3,
        code="auth.method_not_allowed",
    )
    assert device_key.hex() not in message
    assert len(cli.dump()) > before  # the refusal is audited

    cli.run(
        "policy",
        "relax",
        "--rule",
        "auth_methods",
        "--value",
        "mtls,jwt,hmac-token",
        "--scope",
        f"device:{pid}",
        "--expires",
        "1d",
        "--reason",
        "legacy SAS-only firmware",
    )
    who = cli.json("credential", "verify", "--hmac", token(), "--resource", RESOURCE)
    assert (who["physical_id"], who["logical_name"], who["method"]) == (pid, NAME, "hmac-token")
    assert who["credential_id"] == "1"


def test_public_key_register_list_revoke_and_verify_a_jwt(
    cli: Cli, pid: str, tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "key.pem"
    pem.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    registered = cli.json(
        "credential", "public-key", "register", pid, "--file", str(pem), "--expires", "90d"
    )
    kid = registered["key_id"]
    assert kid == key_id_of(key.public_key()) and registered["expires_at"] is not None
    assert [k["key_id"] for k in cli.json("credential", "public-key", "list", pid)] == [kid]

    def token(audience: str) -> str:
        now = int(time.time())
        claims = {
            "sub": pid,
            "aud": audience,
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})

    who = cli.json("credential", "verify", "--jwt", token(AUDIENCE), "--audience", AUDIENCE)
    assert (who["physical_id"], who["method"], who["credential_id"]) == (pid, "jwt", kid)
    stdin = CliRunner().invoke(
        app,
        ["credential", "verify", "--jwt", "-", "--audience", AUDIENCE],
        input=token(AUDIENCE),
        env=cli.env,
        catch_exceptions=False,
    )
    assert stdin.exit_code == 0 and pid in stdin.stdout

    cli.refused(
        "credential",
        "verify",
        "--jwt",
        token("https://other.example"),
        "--audience",
        AUDIENCE,
        status=3,
        code="auth.token_wrong_audience",
    )
    revoked = cli.json("credential", "public-key", "revoke", kid)
    assert revoked["revoked_at"] is not None
    cli.refused(
        "credential",
        "verify",
        "--jwt",
        token(AUDIENCE),
        "--audience",
        AUDIENCE,
        status=3,
        code="auth.key_revoked",
    )


def test_verify_a_certificate_chain(cli: Cli, pid: str, tmp_path: Path) -> None:
    platform = cli.platform()
    try:
        issued, _key = device_certificate(platform, pid)
        chain = tmp_path / "chain.pem"
        chain.write_bytes(issued.certificate.public_bytes(Encoding.PEM))
        platform.pki.revoke(issued.serial, "keyCompromise", actor="test")
        good, _key = device_certificate(platform, pid)
        fine = tmp_path / "good.pem"
        fine.write_bytes(good.certificate.public_bytes(Encoding.PEM))
    finally:
        platform.close()
    who = cli.json("credential", "verify", "--cert", str(fine))
    assert (who["physical_id"], who["method"]) == (pid, "mtls")
    assert "Authenticated" in cli.run("credential", "verify", "--cert", str(fine)).stdout
    cli.refused("credential", "verify", "--cert", str(chain), status=3, code="auth.cert_revoked")


def test_bad_input_is_refused_and_changes_nothing(cli: Cli, pid: str, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    before = cli.dump()
    cases: list[tuple[list[str], int, str]] = [
        (["token-key", "rotate", "not-a-uuid"], 2, "identity.invalid_physical_id"),
        (["token-key", "rotate", pid, "--overlap", "40d"], 2, "deviceauth.invalid_limits"),
        (["token-key", "rotate", pid, "--overlap", "soon"], 2, "policy.invalid_duration"),
        (["token-key", "revoke", pid, "9"], 4, "deviceauth.key_not_found"),
        (["token-key", "adopt", pid], 4, "deviceauth.key_not_found"),
        (["public-key", "register", pid, "--file", str(garbage)], 2, "deviceauth.invalid_key"),
        (
            ["public-key", "register", pid, "--file", str(tmp_path / "none")],
            2,
            "cli.unreadable_file",
        ),
        (["public-key", "revoke", "ab" * 32], 4, "deviceauth.key_not_found"),
        (["verify", "--jwt", "x", "--cert", str(garbage)], 2, "cli.invalid_credential"),
        (["verify", "--hmac", "x"], 2, "cli.resource_required"),
    ]
    for args, status, code in cases:
        cli.refused("credential", *args, status=status, code=code)
    assert cli.dump() == before


def test_verify_spends_the_jti_and_dry_run_does_not(cli: Cli, pid: str, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "key.pem"
    pem.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    kid = cli.json("credential", "public-key", "register", pid, "--file", str(pem))["key_id"]
    now = int(time.time())
    claims = {"sub": pid, "aud": AUDIENCE, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
    token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})
    verify = ("credential", "verify", "--jwt", token, "--audience", AUDIENCE)

    for _ in range(2):  # a dry run leaves the token usable, however often it runs
        checked = cli.json(*verify, "--dry-run")
        assert (checked["physical_id"], checked["spent"]) == (pid, False)
    assert "stays usable" in cli.run(*verify, "--dry-run").stderr

    spent = cli.json(*verify)  # the default is a real authentication: the jti is spent
    assert spent["spent"] is True
    cli.refused(*verify, status=3, code="auth.token_replayed")
    cli.refused(*verify, "--dry-run", status=3, code="auth.token_replayed")

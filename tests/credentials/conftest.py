"""Fixtures for the device-credential suite: a real `Platform` with a CA on the `db` fixture's
database (SQLite and PostgreSQL), its API app, operator keys, and an active unit holding a
logical name, plus helpers that make the credentials a device would present."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from sqlalchemy import select

from devicetrust.api import create_app
from devicetrust.auth import Scope
from devicetrust.deviceauth import encode_token, key_id_of, new_nonce
from devicetrust.domain import DeviceState, FixedClock
from devicetrust.identity import UnitSpec
from devicetrust.pki import IssuedCertificate, Profile
from devicetrust.runtime import Platform, Settings
from devicetrust.runtime.settings import DatabaseSettings, ServerSettings
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow
from devicetrust.vault import Vault
from tests.pki.certs import make_csr

ACTOR = "operator:test"
NAME = "line-03-left-welding-12"
API_URL = "https://api.example.com"
API_HOST = "api.example.com"


def active_unit(platform: Platform, name: str | None = NAME, controller: str = "C-1") -> str:
    """An active unit (holding `name` when given); its physical id."""
    registered = platform.identity.register(
        UnitSpec("arm-r7", {"controller": controller}), actor="factory"
    )
    pid = registered.physical_id
    if name is not None:
        platform.identity.create_logical(name, actor=ACTOR)
        platform.identity.bind(name, pid, actor=ACTOR)
    platform.identity.set_state(pid, DeviceState.ACTIVE, actor=ACTOR)
    return str(pid)


def device_jwt(
    platform: Platform,
    pid: str,
    key: ec.EllipticCurvePrivateKey,
    *,
    audience: str = API_URL,
    lifetime: timedelta = timedelta(minutes=10),
    issued_shift: timedelta = timedelta(0),
) -> str:
    now = int((platform.clock.now() + issued_shift).timestamp())
    claims: dict[str, Any] = {
        "sub": pid,
        "aud": audience,
        "iat": now,
        "exp": now + int(lifetime.total_seconds()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": key_id_of(key.public_key())})


def registered_key(platform: Platform, pid: str) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    platform.device_auth.public_keys.register(pid, pem, actor=ACTOR)
    return key


def hmac_token(
    platform: Platform,
    pid: str,
    key: bytes | bytearray,
    *,
    version: int = 1,
    resource: str = API_HOST,
    lifetime: timedelta = timedelta(minutes=10),
) -> str:
    expiry = platform.clock.now() + lifetime
    return encode_token(bytes(key), pid, version, resource, expiry, new_nonce())


def allow_hmac(platform: Platform, pid: str) -> None:
    """A conscious relaxation: this unit may use HMAC tokens for a day."""
    platform.policy.relax(
        "auth_methods",
        ["mtls", "jwt", "hmac-token"],
        f"device:{pid}",
        reason="legacy firmware signs only SAS tokens",
        expires="1d",
        actor=ACTOR,
    )


def device_certificate(
    platform: Platform, pid: str
) -> tuple[IssuedCertificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    issued = platform.pki.issue_from_csr(make_csr(key), pid, Profile.DEVICE, actor=ACTOR)
    return issued, key


def refusal_codes(db: Database) -> list[str]:
    """The precise codes of the `device.auth_refused` audit entries, oldest first."""
    with db.read() as session:
        rows = session.execute(
            select(AuditEntryRow)
            .where(AuditEntryRow.action == "device.auth_refused")
            .order_by(AuditEntryRow.seq)
        ).scalars()
        return [str(row.details["code"]) for row in rows]


@dataclass
class Env:
    platform: Platform
    client: TestClient
    pid: str
    clock: FixedClock

    def headers(self, *scopes: Scope) -> dict[str, str]:
        token = self.platform.api_keys.create("test key", scopes, actor="test")[1]
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def platform(db: Database, clock: FixedClock, tmp_path: Path) -> Iterator[Platform]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database=DatabaseSettings(url=db.url),
        server=ServerSettings(public_url=API_URL),
    )
    # The `db` fixture is at head already: skip Platform's (no-op) upgrade on every test.
    vault = Vault.from_key(os.urandom(32))
    built = Platform(settings, clock=clock, vault=vault, migrate=False)
    built.pki.init_hierarchy(actor=ACTOR)
    yield built
    built.close()


@pytest.fixture
def env(platform: Platform, clock: FixedClock) -> Iterator[Env]:
    pid = active_unit(platform)
    with TestClient(create_app(platform)) as client:
        yield Env(platform, client, pid, clock)

"""Fixtures of the security suite: a fresh platform on a SQLite file in tmp (its CA
initialised, a small fleet seeded through the API), its FastAPI app and an admin API key.

The API fixtures are module-scoped: the schemathesis tests send thousands of requests to one
platform, so state accumulates across examples as it would on a real server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from devicetrust.api import create_app
from devicetrust.auth import Scope
from devicetrust.domain import FixedClock
from devicetrust.runtime import Platform, Settings
from devicetrust.runtime.settings import DatabaseSettings, ServerSettings
from devicetrust.store.database import Database, sqlite_url
from devicetrust.store.migrate import upgrade
from devicetrust.vault import Vault
from tests.api.wire import bearer, unit
from tests.pki.certs import ec_key, make_csr

ACTOR = "operator:security-suite"
SEEDED_NAME = "line-03-left-welding-12"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("platform")
    database = Database(sqlite_url(root / "devicetrust.db"))
    upgrade(database)
    settings = Settings(
        data_dir=root / "data",
        database=DatabaseSettings(url=database.url),
        server=ServerSettings(max_body_bytes=64 * 1024),
    )
    clock = FixedClock(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
    built = Platform(settings, clock=clock, vault=Vault.from_key(os.urandom(32)))
    built.pki.init_hierarchy(actor=ACTOR)
    yield built
    built.close()
    database.dispose()


@pytest.fixture(scope="module")
def app(platform: Platform) -> FastAPI:
    return create_app(platform)


@pytest.fixture(scope="module")
def admin(platform: Platform) -> dict[str, str]:
    """Headers of an admin API key."""
    return bearer(platform.api_keys.create("security suite", [Scope.ADMIN], actor=ACTOR)[1])


@pytest.fixture(scope="module")
def known(app: FastAPI, admin: dict[str, str]) -> dict[str, str]:
    """Path parameters naming resources that exist: a bound unit, its logical identity, one
    of its certificates, a webhook and an API key (random strings would only ever hit 404s)."""
    with TestClient(app) as client:

        def created(path: str, body: dict[str, object]) -> dict[str, object]:
            response = client.post(path, json=body, headers=admin)
            assert response.status_code in (200, 201), response.text
            result: dict[str, object] = response.json()
            return result

        physical_id = str(created("/v1/physical-identities", unit())["physical_id"])
        created("/v1/logical-identities", {"name": SEEDED_NAME})
        created(f"/v1/logical-identities/{SEEDED_NAME}/bind", {"physical_id": physical_id})
        csr = make_csr(ec_key()).decode()
        cert = created("/v1/pki/certificates", {"csr": csr, "physical_id": physical_id})
        hook = created("/v1/webhooks", {"url": "https://erp.example.com/h", "event_types": ["*"]})
        key = created("/v1/api-keys", {"name": "seeded", "scopes": ["identity:read"]})
    webhook = hook["webhook"]
    assert isinstance(webhook, dict)
    api_key = key["key"]
    assert isinstance(api_key, dict)
    return {
        "physical_id": physical_id,
        "name": SEEDED_NAME,
        "logical_name": SEEDED_NAME,
        "serial": str(cert["serial"]),
        "webhook_id": str(webhook["id"]),
        "key_id": str(api_key["key_id"]),
    }

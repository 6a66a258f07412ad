"""Fixtures for operator API tests over a real Platform (the `db` fixture: SQLite and
PostgreSQL, at head) with the fixed clock: the app's TestClient, API keys by scope (`key`),
`writer` / `reader` keys of the security policy, and one registered unit (`pid`). Import the
fixtures a module uses by name."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from devicetrust.api import create_app
from devicetrust.auth import Scope
from devicetrust.domain import FixedClock
from devicetrust.runtime import Platform, Settings
from devicetrust.runtime.settings import DatabaseSettings
from devicetrust.store.database import Database
from devicetrust.vault import Vault
from tests.api.wire import bearer, unit


@pytest.fixture
def platform(db: Database, clock: FixedClock, tmp_path: Path) -> Iterator[Platform]:
    settings = Settings(data_dir=tmp_path / "data", database=DatabaseSettings(url=db.url))
    # The `db` fixture is at head already: skip Platform's (no-op) upgrade on every test.
    built = Platform(settings, clock=clock, vault=Vault.from_key(os.urandom(32)), migrate=False)
    yield built
    built.close()


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform)) as test_client:
        yield test_client


def key(platform: Platform, *scopes: Scope) -> dict[str, str]:
    """The Authorization header of a new API key with `scopes`."""
    return bearer(platform.api_keys.create("test", scopes, actor="test")[1])


@pytest.fixture
def writer(platform: Platform) -> dict[str, str]:
    return key(platform, Scope.POLICY_READ, Scope.POLICY_WRITE)


@pytest.fixture
def reader(platform: Platform) -> dict[str, str]:
    return key(platform, Scope.POLICY_READ)


@pytest.fixture
def pid(client: TestClient, platform: Platform) -> str:
    created = client.post("/v1/physical-identities", json=unit(), headers=key(platform, Scope.ADMIN))
    assert created.status_code == 201, created.text
    physical_id: str = created.json()["physical_id"]
    return physical_id

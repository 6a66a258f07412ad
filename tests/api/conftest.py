"""Fixtures for the API suite: a real Platform on the `db` fixture's database (SQLite and
PostgreSQL), its FastAPI app, a TestClient and API keys with chosen scopes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from devicetrust.api import create_app
from devicetrust.auth import Scope
from devicetrust.domain import FixedClock
from devicetrust.runtime import Platform, Settings
from devicetrust.runtime.settings import DatabaseSettings, ServerSettings
from devicetrust.store.database import Database
from devicetrust.vault import Vault
from tests.api.wire import NAME, bearer, unit
from tests.conftest import snapshot_tables

MAX_BODY = 4096
PHYSICAL = "/v1/physical-identities"
LOGICAL = "/v1/logical-identities"
MintKey = Callable[..., str]


@pytest.fixture
def platform(db: Database, clock: FixedClock, tmp_path: Path) -> Iterator[Platform]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database=DatabaseSettings(url=db.url),
        server=ServerSettings(max_body_bytes=MAX_BODY),
    )
    # The `db` fixture is at head already: skip Platform's (no-op) upgrade on every test.
    vault = Vault.from_key(os.urandom(32))
    built = Platform(settings, clock=clock, vault=vault, migrate=False)
    yield built
    built.close()


@pytest.fixture
def app(platform: Platform) -> FastAPI:
    return create_app(platform)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def mint(platform: Platform) -> MintKey:
    """mint(*scopes) -> a fresh token holding those scopes."""

    def _mint(*scopes: Scope, name: str = "test key") -> str:
        return platform.api_keys.create(name, scopes, actor="test")[1]

    return _mint


@pytest.fixture
def admin(mint: MintKey) -> dict[str, str]:
    """Headers of an admin key."""
    return bearer(mint(Scope.ADMIN, name="test admin"))


@dataclass
class Fleet:
    """Two units, one bound to NAME, one free; a quarantined third; a second identity."""

    bound: str
    free: str
    quarantined: str


@pytest.fixture
def writer(mint: MintKey) -> dict[str, str]:
    return bearer(mint(Scope.ADMIN))


@pytest.fixture
def fleet(client: TestClient, writer: dict[str, str]) -> Fleet:
    ids = [
        client.post(PHYSICAL, json=unit(controller=f"C-{n}"), headers=writer).json()["physical_id"]
        for n in range(3)
    ]
    for name in (NAME, "spare-name"):
        assert client.post(LOGICAL, json={"name": name}, headers=writer).status_code == 201
    bound = client.post(f"{LOGICAL}/{NAME}/bind", json={"physical_id": ids[0]}, headers=writer)
    assert bound.status_code == 200
    quarantine = {"state": "quarantined", "reason": "tamper alarm"}
    assert client.post(f"{PHYSICAL}/{ids[2]}/state", json=quarantine, headers=writer).is_success
    return Fleet(bound=ids[0], free=ids[1], quarantined=ids[2])


@pytest.fixture
def unchanged(db: Database, fleet: Fleet) -> Iterator[None]:
    """Asserts, after the test, that no table changed."""
    before = snapshot_tables(db)
    yield
    assert snapshot_tables(db) == before

"""Fixtures of the data-plane interface tests: a real Platform on the `db` fixture's database
(SQLite and PostgreSQL) with a fixed clock, its API, keys with chosen scopes, and a fleet
whose diagnostics and telemetry span a replacement."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from devicetrust.api import create_app
from devicetrust.auth import Scope
from devicetrust.domain import FixedClock
from devicetrust.domain.ids import PhysicalId
from devicetrust.identity import UnitSpec
from devicetrust.ingest import InboundMessage, MessageKind, MessageStore
from devicetrust.runtime import Platform, Settings
from devicetrust.runtime.settings import DatabaseSettings, ServerSettings
from devicetrust.store.database import Database
from devicetrust.vault import Vault

ACTOR = "operator:test"
NAME = "line-03-left-welding-12"
OTHER = "line-04-right-welding-01"
MAX_BODY = 4096
Headers = dict[str, str]
MintKey = Callable[..., Headers]


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
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform)) as test_client:
        yield test_client


@pytest.fixture
def mint(platform: Platform) -> MintKey:
    """mint(*scopes) -> the headers of a fresh key holding those scopes."""

    def _mint(*scopes: Scope) -> Headers:
        token = platform.api_keys.create("data test", scopes, actor=ACTOR)[1]
        return {"Authorization": f"Bearer {token}"}

    return _mint


@dataclass(frozen=True)
class Fleet:
    """`old` held NAME until it was replaced by `new` (10 minutes before now); `free` holds
    nothing. Each unit reported one diagnostics and one telemetry message."""

    old: PhysicalId
    new: PhysicalId
    free: PhysicalId


def report(store: MessageStore, pid: PhysicalId, kind: MessageKind, body: object,
           clock: FixedClock) -> None:
    message = InboundMessage(pid, kind, json.dumps(body).encode(), clock.now())
    assert store.store(message).outcome.value == "stored"


@pytest.fixture
def fleet(platform: Platform, clock: FixedClock) -> Fleet:
    identity = platform.identity
    start = clock.now()
    clock.advance(timedelta(hours=-2))
    old, new, free = (
        identity.register(UnitSpec("RA-7", {}), actor=ACTOR).physical_id for _ in range(3)
    )
    identity.create_logical(NAME, actor=ACTOR)
    identity.create_logical(OTHER, actor=ACTOR)
    identity.bind(NAME, old, actor=ACTOR)
    store = MessageStore(platform.db, clock)
    report(store, old, MessageKind.DIAGNOSTICS, {"parts_per_hour": 118}, clock)
    report(store, old, MessageKind.TELEMETRY, {"torque": [1.5]}, clock)
    clock.advance(timedelta(hours=2) - timedelta(minutes=10))
    identity.replace(NAME, new, actor=ACTOR)
    report(store, new, MessageKind.DIAGNOSTICS, {"parts_per_hour": 121}, clock)
    report(store, new, MessageKind.TELEMETRY, {"torque": [0.9]}, clock)
    clock.advance(timedelta(minutes=10))
    assert clock.now() == start
    return Fleet(PhysicalId(old), PhysicalId(new), PhysicalId(free))

"""Shared fixtures: a migrated database on SQLite and on the real PostgreSQL server.

`db` is parametrised over both backends, so every test that uses it runs twice. PostgreSQL
gets one fresh database per test run (dropped at the end); each test starts from empty
tables. Without a reachable PostgreSQL the postgres cases skip on a laptop, but fail in CI
(`CI=true`): a missing install step must not hide behind a skip.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from devicetrust.domain.clock import FixedClock
from devicetrust.store.database import Database, sqlite_url
from devicetrust.store.migrate import upgrade
from devicetrust.store.models import Base

pytest_plugins = ["tests.ca_fixtures"]

PG_ADMIN_URL = os.environ.get(
    "DEVICETRUST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_service(name: str, reason: str) -> None:
    """Skip on a developer machine, fail in CI."""
    if IN_CI:
        pytest.fail(f"{name} is required in CI but unavailable: {reason}")
    pytest.skip(f"{name} unavailable: {reason}")


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    name = f"devicetrust_test_{secrets.token_hex(4)}"
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        require_service("PostgreSQL", str(exc).splitlines()[0])
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    url = f"{base}/{name}"
    migrated = Database(url)
    upgrade(migrated)
    migrated.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def _empty_tables(db: Database) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if db.is_postgres:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text(f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{'0' * 64}')"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = Database(sqlite_url(tmp_path / "devicetrust.db"))
        upgrade(database)
    else:
        database = Database(request.getfixturevalue("pg_database_url"))
        _empty_tables(database)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    database = Database(sqlite_url(tmp_path / "devicetrust.db"))
    upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def pg_db(pg_database_url: str) -> Iterator[Database]:
    database = Database(pg_database_url)
    _empty_tables(database)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))


def snapshot_tables(db: Database) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in a stable order: compare before and after a refused
    operation to prove it changed nothing."""
    out: dict[str, list[tuple[object, ...]]] = {}
    with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = conn.execute(table.select()).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (tests bind their own servers there, never to the
    fixed ports of the machine's services)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

"""Shared fixtures: a migrated database on SQLite and on the real PostgreSQL server.

`db` is parametrised over both backends, so every test that uses it runs twice. PostgreSQL
gets one fresh database per test process (dropped at the end); each test starts from empty
tables. Without a reachable PostgreSQL the postgres cases skip on a laptop, but fail in CI
(`CI=true`): a missing install step must not hide behind a skip.

Worker safety (`scripts/test` runs the suite with pytest-xdist): every session resource is
per process. The PostgreSQL database name carries the worker id, and each process gets its
own temporary directory (`TMPDIR`, inherited by the subprocesses tests start), so a test
that inspects the temporary directory never sees another worker's files.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
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
# "gw0", "gw1", ... under pytest-xdist; "main" in a plain run.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


def require_service(name: str, reason: str) -> None:
    """Skip on a developer machine, fail in CI."""
    if IN_CI:
        pytest.fail(f"{name} is required in CI but unavailable: {reason}")
    pytest.skip(f"{name} unavailable: {reason}")


@pytest.fixture(scope="session", autouse=True)
def worker_tmpdir() -> Iterator[Path]:
    """A temporary directory of this test process, removed at the end. World-traversable
    (mode 0755, like /tmp minus the sticky bit): services that drop root, such as
    mosquitto, must reach the folders tests create in it."""
    folder = Path(tempfile.mkdtemp(prefix=f"devicetrust-tests-{WORKER}-"))
    folder.chmod(0o755)
    previous_env, previous_dir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = previous_dir
        if previous_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = previous_env
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    name = f"devicetrust_test_{WORKER}_{secrets.token_hex(4)}"
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
    try:
        yield url
    finally:
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


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per test process (read-only: tests get copies).
    Copying it gives the very bytes a fresh `upgrade` writes, in a fraction of the time."""
    path = tmp_path_factory.mktemp("sqlite-template") / "devicetrust.db"
    database = Database(sqlite_url(path))
    upgrade(database)
    database.dispose()
    leftovers = [p.name for p in path.parent.iterdir() if p != path]
    assert not leftovers, f"the template was not checkpointed: {leftovers}"
    return path


def _fresh_sqlite(template: Path, folder: Path) -> Database:
    path = folder / "devicetrust.db"
    shutil.copyfile(template, path)
    return Database(sqlite_url(path))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = _fresh_sqlite(request.getfixturevalue("migrated_sqlite"), tmp_path)
    else:
        database = Database(request.getfixturevalue("pg_database_url"))
        _empty_tables(database)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Database]:
    database = _fresh_sqlite(migrated_sqlite, tmp_path)
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

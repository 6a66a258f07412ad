"""Engine, sessions and transactions. SQLite (WAL) by default, PostgreSQL in production.

Every service operation runs in exactly one `transaction()`: the change, its audit entry and
its outbox event commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from devicetrust.domain.errors import ConfigurationError, Conflict
from devicetrust.store.journal import seal_pending_audit


def normalise_url(url: str) -> str:
    """Accept the usual `postgresql://` spelling and pick the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def sqlite_url(path: Path) -> str:
    return f"sqlite+pysqlite:///{path}"


class Database:
    """Owns the engine; hands out transactions."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = normalise_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        elif self.dialect == "postgresql":
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            kwargs["pool_pre_ping"] = True
        else:
            raise ConfigurationError(
                "config.database_unsupported",
                f"unsupported database {self.dialect!r}: use sqlite or postgresql",
            )
        self.engine: Engine = create_engine(self.url, **kwargs)
        self._read_engine = self.engine
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine, begin="BEGIN IMMEDIATE")
            # Readers take no write lock: WAL lets them run beside the single writer.
            self._read_engine = create_engine(self.url, **kwargs)
            _configure_sqlite(self._read_engine, begin="BEGIN")
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Audit entries queued during a transaction are chained just before it commits.
        event.listen(self._sessions, "before_commit", seal_pending_audit)
        self._read_sessions = sessionmaker(self._read_engine, expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work; commits on success, rolls back on any exception."""
        with self._sessions() as session:
            try:
                with session.begin():
                    yield session
            except IntegrityError as exc:
                # Services check first; this is the backstop for a race they lost
                # (e.g. the partial unique index on open bindings).
                raise Conflict(
                    "store.constraint_violated",
                    "the change conflicts with a concurrent one; retry",
                ) from exc
            except OperationalError as exc:
                if _is_serialization_failure(exc):
                    raise Conflict(
                        "store.concurrent_change",
                        "a concurrent change touched the same records; retry",
                    ) from exc
                raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work: a consistent snapshot, never a write lock; rolled back."""
        with self._read_sessions() as session:
            yield session  # closing the session rolls back the implicit transaction

    def dispose(self) -> None:
        self.engine.dispose()
        self._read_engine.dispose()


def _is_serialization_failure(exc: OperationalError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("40001", "40P01")


def _configure_sqlite(engine: Engine, *, begin: str) -> None:
    """WAL for concurrent readers; foreign keys on; writers use BEGIN IMMEDIATE so that they
    queue on the database lock instead of failing on a read-to-write upgrade."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)


def journal_mode(db: Database) -> str:
    with db.engine.connect() as conn:
        return str(conn.execute(text("PRAGMA journal_mode")).scalar_one())

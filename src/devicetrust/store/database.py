"""Engine, sessions and transactions. SQLite (WAL) by default, PostgreSQL in production.

Every service operation runs in exactly one `transaction()`: the change, its audit entry and
its outbox event commit together or not at all.

Composed operations: a `transaction()` (or `read()`) opened while another `transaction()` of
the same `Database` is open in the same thread/task joins it instead of starting its own.
Nothing commits before the outermost transaction does, and its audit entries are chained
once, at that commit; an error inside a joined transaction fails the outer one. A caller
that wants to survive a refusal inside it (a lost race on a unique name, say) opens a
`savepoint()`, which undoes only its own part. A joined `read()` sees the outer
transaction's own uncommitted writes.

`snapshot()` is the same for reads: the `read()`s opened inside it join its one read
session (one snapshot, one connection), and `Session.info` lives as long as it does, so a
service may remember what it read there (`PolicyService.effective` does). A `transaction()`
inside a snapshot is still its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from devicetrust.domain.errors import ConfigurationError, Conflict
from devicetrust.store.journal import pending_mark, rewind_pending, seal_pending


def normalise_url(url: str) -> str:
    """Accept the usual `postgresql://` spelling and pick the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


# The open outermost transaction of this thread/task, with the `Database` it belongs to.
_AMBIENT: ContextVar[tuple[Database, Session] | None] = ContextVar(
    "devicetrust_ambient_transaction", default=None
)


class _Snapshot:
    """An open `snapshot()`: its read session, made at its first read (a snapshot whose
    callers read nothing, e.g. a cache hit, costs no session)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.session: Session | None = None

    def joined(self) -> Session:
        if self.session is None:
            self.session = self.db._read_sessions()
        return self.session


# The open `snapshot()` of this thread/task.
_AMBIENT_READ: ContextVar[_Snapshot | None] = ContextVar(
    "devicetrust_ambient_snapshot", default=None
)


def sqlite_url(path: Path) -> str:
    return f"sqlite+pysqlite:///{path}"


_PG_LIVENESS: dict[str, int] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,  # milliseconds
}


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
            # A server that vanishes without closing (a cut or black-holed network) must
            # fail the statement within seconds, not after the kernel's TCP retransmission
            # timeout (~15 min): libpq's connect timeout, TCP keepalives and a user timeout
            # on unacknowledged sends. Settings in the URL's query take precedence.
            kwargs["connect_args"] = {
                key: value
                for key, value in _PG_LIVENESS.items()
                if key not in make_url(self.url).query
            }
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
        # Events and audit entries queued during a transaction are written (the entries
        # chained) just before it commits.
        event.listen(self._sessions, "before_commit", seal_pending)
        self._read_sessions = sessionmaker(self._read_engine, expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work; commits on success, rolls back on any exception. Inside an open
        transaction of this database it joins it (see the module doc)."""
        outer = self._joined()
        if outer is not None:
            yield outer
            return
        with self._sessions() as session:
            token = _AMBIENT.set((self, session))
            try:
                with _conflicts(), session.begin():
                    yield session
            finally:
                _AMBIENT.reset(token)

    @contextmanager
    def savepoint(self) -> Iterator[Session]:
        """A part of the open transaction that a failure undoes alone (SAVEPOINT); outside
        a transaction, a transaction of its own."""
        outer = self._joined()
        if outer is None:
            with self.transaction() as session:
                yield session
            return
        mark = pending_mark(outer)
        try:
            with _conflicts(), outer.begin_nested():
                yield outer
        except BaseException:
            rewind_pending(outer, mark)  # what was undone is neither audited nor evented
            raise

    def try_claim(self, key: str) -> bool:
        """Claim `key` until the open transaction ends, without waiting: False when a
        concurrent transaction holds it (PostgreSQL transaction-level advisory lock on a
        64-bit hash of the key; a collision only makes a claim fail spuriously). SQLite
        serialises writers, so there it always succeeds."""
        outer = self._joined()
        if outer is None:
            raise RuntimeError("try_claim needs an open transaction")
        if not self.is_postgres:
            return True
        claimed = outer.execute(
            text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
        ).scalar_one()
        return bool(claimed)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work: a consistent snapshot, never a write lock; rolled back.
        Inside an open transaction of this database it reads through that transaction, and
        inside a `snapshot()` through its session."""
        outer = self._joined()
        if outer is not None:
            yield outer
            return
        snapshot = self._snapshot()
        if snapshot is not None:
            yield snapshot.joined()
            return
        with self._read_sessions() as session:
            yield session  # closing the session rolls back the implicit transaction

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """The `read()`s opened inside share one session (see the module doc); inside a
        transaction or another snapshot, nothing changes."""
        if self._joined() is not None or self._snapshot() is not None:
            yield
            return
        snapshot = _Snapshot(self)
        token = _AMBIENT_READ.set(snapshot)
        try:
            yield
        finally:
            _AMBIENT_READ.reset(token)
            if snapshot.session is not None:
                snapshot.session.close()  # rolls back its implicit transaction

    def _joined(self) -> Session | None:
        ambient = _AMBIENT.get()
        return ambient[1] if ambient is not None and ambient[0] is self else None

    def _snapshot(self) -> _Snapshot | None:
        ambient = _AMBIENT_READ.get()
        return ambient if ambient is not None and ambient.db is self else None

    def dispose(self) -> None:
        self.engine.dispose()
        self._read_engine.dispose()


@contextmanager
def _conflicts() -> Iterator[None]:
    try:
        yield
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

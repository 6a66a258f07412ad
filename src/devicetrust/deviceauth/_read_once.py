"""An authentication's one statement, at the lowest cost the database allows.

A single SELECT is consistent on its own (one snapshot), so it needs no transaction around
it. Two ways to run one:

- `read_once(db, statement, params)`: through a read session (`Database.read()`, so inside
  an open transaction or snapshot of the same database it reads through it). On PostgreSQL
  it runs in autocommit, which saves the BEGIN and ROLLBACK round trips of a read session
  (three round trips become one, plus the pool's liveness check); on SQLite a deferred BEGIN
  and its rollback cost nothing, and switching the isolation level would (a PRAGMA each
  way). Core statements on the session's connection skip the ORM's result processing.
- `RowReader(db, statement)`: the statement compiled once for the database's dialect and
  run straight on a pooled DBAPI connection, with no transaction: on SQLite the driver is in
  autocommit already (`Database` issues its BEGINs itself), on PostgreSQL it is switched to
  autocommit for the statement. About a sixth of `read_once`'s cost on SQLite, for the
  statement every new device connection runs (`mtls_auth`). The price: parameters go to the
  driver as they are and columns come back as the driver returns them (no type processing:
  for strings and integers only), and it never joins an open transaction -- it sees what is
  committed, so it is not for a caller that must see its own uncommitted writes.

Never writes: the statements given are SELECTs.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Executable, Row, Select
from sqlalchemy.exc import DBAPIError

from devicetrust.domain.errors import ConfigurationError
from devicetrust.store.database import Database

_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}
Param = str | int | None


def read_once(
    db: Database, statement: Executable, params: Mapping[str, Any]
) -> Row[*tuple[Any, ...]] | None:
    """The first row `statement` returns with `params`, or None."""
    with db.read() as session:
        if db.is_postgres and not session.in_transaction():
            connection = session.connection(execution_options=_AUTOCOMMIT)
        else:
            connection = session.connection()
        return connection.execute(statement, params).first()


@dataclass(frozen=True, slots=True)
class _Compiled:
    engine: Engine  # the one `Database.read()` uses outside a transaction
    sql: str
    fixed: dict[str, Any]  # the statement's own values (literals)
    wanted: frozenset[str]  # the parameters a caller gives
    positions: tuple[str, ...] | None  # qmark: the order of the values; else by name
    autocommit: bool


class RowReader:
    """One SELECT of strings and integers, compiled at first use; see the module doc."""

    def __init__(self, db: Database, statement: Select[*tuple[Any, ...]]) -> None:
        self._db = db
        self._statement = statement
        self._compiled: _Compiled | None = None
        self._lock = threading.Lock()

    def first(self, params: Mapping[str, Param]) -> tuple[Any, ...] | None:
        """The first row the statement returns with `params` (exactly its parameters)."""
        compiled = self._compiled or self._compile()
        if params.keys() != compiled.wanted:
            raise ValueError(f"the statement takes {sorted(compiled.wanted)}")
        values = {**compiled.fixed, **params}
        args: Any = (
            tuple(values[name] for name in compiled.positions)
            if compiled.positions is not None
            else values
        )
        engine = compiled.engine
        dbapi_error = engine.dialect.loaded_dbapi.Error
        connection = engine.raw_connection()
        driver: Any = connection.driver_connection
        restored = not compiled.autocommit  # never back to the pool in autocommit
        try:
            if compiled.autocommit:
                driver.autocommit = True
            cursor = connection.cursor()
            try:
                cursor.execute(compiled.sql, args)
                row = cursor.fetchone()
            finally:
                cursor.close()
                if compiled.autocommit:
                    driver.autocommit = False
                    restored = True
        except dbapi_error as exc:
            if engine.dialect.is_disconnect(exc, connection.dbapi_connection, None):
                restored = False
            raise DBAPIError.instance(compiled.sql, args, exc, dbapi_error) from exc
        finally:
            if not restored:
                connection.invalidate()  # closed; the pool opens a new one when needed
            connection.close()
        return None if row is None else tuple(row)

    def _compile(self) -> _Compiled:
        with self._lock:
            if self._compiled is not None:
                return self._compiled
            with self._db.read() as session:
                engine = session.get_bind()
            if not isinstance(engine, Engine):
                raise ConfigurationError("deviceauth.no_engine", "the database has no engine")
            compiled = self._statement.compile(dialect=engine.dialect)
            wanted = frozenset(b.key for b in compiled.binds.values() if b.required)
            fixed = compiled.construct_params(dict.fromkeys(wanted))
            for name in wanted:
                fixed.pop(name, None)
            style = engine.dialect.paramstyle
            if style not in ("qmark", "pyformat", "named"):
                raise ConfigurationError(
                    "deviceauth.paramstyle_unsupported", f"driver paramstyle {style!r}"
                )
            self._compiled = _Compiled(
                engine=engine,
                sql=str(compiled),
                fixed=dict(fixed),
                wanted=wanted,
                positions=tuple(compiled.positiontup or ()) if style == "qmark" else None,
                autocommit=self._db.is_postgres,
            )
            return self._compiled

"""`RowReader` runs one SELECT on a pooled DBAPI connection: it answers what the same
statement answers through a session, refuses parameters the statement does not take,
reports a failing statement as SQLAlchemy's error, and never hands a connection back to the
pool in autocommit (a later transaction there would no longer be atomic), on SQLite and
PostgreSQL."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from sqlalchemy import bindparam, column, select, table
from sqlalchemy.exc import DBAPIError

from devicetrust.deviceauth._read_once import RowReader, read_once
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.store.database import Database
from devicetrust.store.models import PhysicalIdentityRow

STATE = select(PhysicalIdentityRow.id, PhysicalIdentityRow.state).where(
    PhysicalIdentityRow.id == bindparam("pid")
)


def no_pooled_connection_is_in_autocommit(db: Database) -> bool:
    """Checks out every connection the pool keeps, at once, and looks at each driver's mode
    (psycopg's `autocommit`; SQLite's driver is always in it, `Database` begins itself)."""
    with ExitStack() as held:
        drivers = [
            held.enter_context(db.engine.connect()).connection.driver_connection
            for _ in range(db.engine.pool.size())  # type: ignore[attr-defined]
        ]
        return not db.is_postgres or not any(d.autocommit for d in drivers)  # type: ignore[union-attr]


def test_it_answers_what_a_session_answers(db: Database, unit: PhysicalIdentity) -> None:
    reader = RowReader(db, STATE)
    for pid in (unit.physical_id, "6f1c1f4e-3c55-4d7e-9d1e-0f9f3c2b1a00"):
        row = read_once(db, STATE, {"pid": pid})
        assert reader.first({"pid": pid}) == (tuple(row) if row is not None else None)
    with pytest.raises(ValueError):
        reader.first({"pid": unit.physical_id, "other": 1})
    assert no_pooled_connection_is_in_autocommit(db)


def test_a_failing_statement_raises_and_leaves_the_pool_as_it_was(db: Database) -> None:
    reader = RowReader(db, select(column("x")).select_from(table("no_such_table")))
    for _ in range(3):
        with pytest.raises(DBAPIError):
            reader.first({})
    assert no_pooled_connection_is_in_autocommit(db)
    with db.read() as session:  # the pool still serves working connections
        assert session.execute(select(1)).scalar_one() == 1

"""A PostgreSQL server that vanishes without closing (a cut or black-holed network) fails
statements within seconds: every pooled connection carries libpq's connect timeout, TCP
keepalives and a TCP user timeout, unless the database URL sets its own."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from devicetrust.store.database import Database

pytestmark = pytest.mark.postgres


def _parameters(db: Database) -> dict[str, str]:
    with db.engine.connect() as connection:
        connection.execute(text("select 1"))
        info = connection.connection.dbapi_connection.info  # type: ignore[union-attr]
        return dict(info.get_parameters())


def test_connections_carry_liveness_settings(pg_database_url: str) -> None:
    db = Database(pg_database_url)
    try:
        got = _parameters(db)
    finally:
        db.engine.dispose()
    assert got["connect_timeout"] == "10"
    assert (got["keepalives"], got["keepalives_idle"]) == ("1", "10")
    assert got["tcp_user_timeout"] == "15000"


def test_the_url_overrides_a_setting(pg_database_url: str) -> None:
    separator = "&" if "?" in pg_database_url else "?"
    db = Database(f"{pg_database_url}{separator}tcp_user_timeout=5000")
    try:
        got = _parameters(db)
    finally:
        db.engine.dispose()
    assert got["tcp_user_timeout"] == "5000"
    assert got["connect_timeout"] == "10"

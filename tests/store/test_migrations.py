"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from devicetrust.store.database import Database, journal_mode, sqlite_url
from devicetrust.store.migrate import current_revision, head_revision, upgrade
from devicetrust.store.models import Base


def test_migrations_match_models(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert current_revision(db) == head_revision(db)


def test_sqlite_default_is_wal_and_upgrade_is_idempotent(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path / "x.db"))
    upgrade(db)
    upgrade(db)
    assert journal_mode(db) == "wal"
    assert [p.name for p in tmp_path.glob("*.db")] == ["x.db"]
    db.dispose()

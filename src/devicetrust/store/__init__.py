"""Persistence: SQLAlchemy 2 models, Alembic migrations, transactions, the audit/outbox journal."""

from devicetrust.store.database import Database, sqlite_url
from devicetrust.store.migrate import upgrade

__all__ = ["Database", "sqlite_url", "upgrade"]

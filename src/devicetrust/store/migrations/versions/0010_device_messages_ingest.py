"""data plane: device messages cheaper to insert -- no foreign keys, one partial index a row

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 03:10:00

`device_messages` is the table every acknowledged QoS 1 message lands in, so each index and
each constraint trigger on it is paid once per message (EXPLAIN ANALYZE of a 160-row batch
on PostgreSQL: 18 us a row for the insert and its four indexes, 6.6 us for the two foreign
key triggers). This revision:

- drops the foreign keys to `physical_identities` and `logical_identities`: the batch
  statement files a report only for a unit it found in the same snapshot, with the logical
  identity that unit holds (`ingest._postgres_batch`, `MessageStore._insert_sqlite`), and
  identities are never deleted (units are decommissioned, names retired), so the keys
  could only ever be checked, never broken;
- replaces the two (id, kind, received_at) indexes by partial ones, each covering the one
  stream that is queried through it: diagnostics by logical identity, telemetry by unit. A
  row now enters one of them, not both. The queries name the stream as a literal so the
  planner can use them (`ingest.store`).

The uniqueness of (unit, stream, message key) is unchanged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TABLE = "device_messages"
# SQLite keeps the 0006 foreign keys unnamed: batch mode names them by this convention.
_FK_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s"}
_DIAGNOSTICS = "kind = 'diagnostics'"
_TELEMETRY = "kind = 'telemetry'"


def _fk_name(column: str) -> str:
    """PostgreSQL named the 0006 keys itself; on SQLite they are named by `_FK_NAMES`."""
    if op.get_bind().dialect.name == "postgresql":
        return f"{_TABLE}_{column}_fkey"
    return f"fk_{_TABLE}_{column}"


def upgrade() -> None:
    with op.batch_alter_table(_TABLE, naming_convention=_FK_NAMES) as batch:
        batch.drop_constraint(_fk_name("physical_id"), type_="foreignkey")
        batch.drop_constraint(_fk_name("logical_id"), type_="foreignkey")
    op.drop_index("ix_device_messages_logical", table_name=_TABLE)
    op.drop_index("ix_device_messages_physical", table_name=_TABLE)
    op.create_index(
        "ix_device_messages_diagnostics", _TABLE, ["logical_id", "received_at"],
        postgresql_where=sa.text(_DIAGNOSTICS), sqlite_where=sa.text(_DIAGNOSTICS),
    )
    op.create_index(
        "ix_device_messages_telemetry", _TABLE, ["physical_id", "received_at"],
        postgresql_where=sa.text(_TELEMETRY), sqlite_where=sa.text(_TELEMETRY),
    )


def downgrade() -> None:
    op.drop_index("ix_device_messages_telemetry", table_name=_TABLE)
    op.drop_index("ix_device_messages_diagnostics", table_name=_TABLE)
    op.create_index("ix_device_messages_logical", _TABLE, ["logical_id", "kind", "received_at"])
    op.create_index("ix_device_messages_physical", _TABLE, ["physical_id", "kind", "received_at"])
    with op.batch_alter_table(_TABLE) as batch:
        for column, table in (("physical_id", "physical_identities"),
                              ("logical_id", "logical_identities")):
            batch.create_foreign_key(_fk_name(column), table, [column], ["id"])

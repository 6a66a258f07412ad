"""logical name releases: a count of the changes that may free a logical name

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 02:50:00

`logical_name_releases`: one row whose `count` the registry raises in the transaction of every
change that may make a held logical name free again (an unbind, a decommissioning that ends a
binding, a rename that retires a name). Pool allocation remembers, with the first possibly free
name of a pool, the count it read; a different count sends it back to the pool's first name.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    releases = op.create_table(
        "logical_name_releases",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(releases, [{"id": 1, "count": 0}])


def downgrade() -> None:
    op.drop_table("logical_name_releases")

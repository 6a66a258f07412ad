"""security policy: fleet/enrollment/device policies, conscious relaxations

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 18:30:00

One settings row per scope; relaxations carry a reason and an expiry (NOT NULL). Whether a
relaxation is active is decided at read time, never stored.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "security_policies",
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("scope"),
    )
    op.create_table(
        "policy_relaxations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("policy_relaxations", schema=None) as batch_op:
        batch_op.create_index("ix_policy_relaxations_scope_rule", ["scope", "rule"], unique=False)
        batch_op.create_index("ix_policy_relaxations_expires", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("policy_relaxations", schema=None) as batch_op:
        batch_op.drop_index("ix_policy_relaxations_expires")
        batch_op.drop_index("ix_policy_relaxations_scope_rule")
    op.drop_table("policy_relaxations")
    op.drop_table("security_policies")

"""data plane: when a device acknowledged its feedback; persistent gateway sessions

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 21:30:00

`feedback_messages.delivered_at`: set with status `delivered` when the unit's PUBACK for a
QoS 1 feedback reached the embedded gateway (NULL before, and for feedback delivered before
this revision). `gateway_sessions`: the embedded gateway's persistent MQTT sessions (expiry,
feedback subscription, when it ends), restored when `serve` restarts.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("feedback_messages") as batch:
        batch.add_column(sa.Column("delivered_at", _TS, nullable=True))
    op.create_table(
        "gateway_sessions",
        sa.Column("physical_id", sa.String(length=36), nullable=False),
        sa.Column("expiry_seconds", sa.Integer(), nullable=False),
        sa.Column("subscription_qos", sa.Integer(), nullable=True),
        sa.Column("ends_at", _TS, nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["physical_id"], ["physical_identities.id"]),
        sa.PrimaryKeyConstraint("physical_id"),
    )


def downgrade() -> None:
    op.drop_table("gateway_sessions")
    with op.batch_alter_table("feedback_messages") as batch:
        batch.drop_column("delivered_at")

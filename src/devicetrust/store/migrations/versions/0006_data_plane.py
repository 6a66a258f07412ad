"""data plane: stored device messages (diagnostics, telemetry) and feedback

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 18:45:00

Database-enforced invariant: a device message is stored once per (unit, stream, message key),
so a QoS 1 redelivery never stores it twice.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "device_messages",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("physical_id", sa.String(length=36), nullable=False),
        sa.Column("logical_id", sa.String(length=36), nullable=True),
        sa.Column("logical_name", sa.String(length=128), nullable=True),
        sa.Column("message_key", sa.String(length=64), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("stored_at", _TS, nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("payload_bytes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["logical_id"], ["logical_identities.id"]),
        sa.ForeignKeyConstraint(["physical_id"], ["physical_identities.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("physical_id", "kind", "message_key", name="uq_device_messages_key"),
    )
    with op.batch_alter_table("device_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_device_messages_logical", ["logical_id", "kind", "received_at"], unique=False
        )
        batch_op.create_index(
            "ix_device_messages_physical", ["physical_id", "kind", "received_at"], unique=False
        )

    op.create_table(
        "feedback_messages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("logical_id", sa.String(length=36), nullable=False),
        sa.Column("logical_name", sa.String(length=128), nullable=False),
        sa.Column("physical_id", sa.String(length=36), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("published_at", _TS, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["logical_id"], ["logical_identities.id"]),
        sa.ForeignKeyConstraint(["physical_id"], ["physical_identities.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("feedback_messages", schema=None) as batch_op:
        batch_op.create_index("ix_feedback_status_created", ["status", "created_at"], unique=False)
        batch_op.create_index(
            "ix_feedback_logical_created", ["logical_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("feedback_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_feedback_logical_created")
        batch_op.drop_index("ix_feedback_status_created")
    op.drop_table("feedback_messages")
    with op.batch_alter_table("device_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_device_messages_physical")
        batch_op.drop_index("ix_device_messages_logical")
    op.drop_table("device_messages")

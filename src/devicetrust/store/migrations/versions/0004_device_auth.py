"""device authentication: token key versions, JWT ids seen (replay), device public keys

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 18:30:00

Database-enforced invariants: a unit's token key version exists once, a public key is
registered once (to one unit), a token id (HMAC nonce, JWT jti) is spent once per unit and
method. Token keys are stored sealed (vault), never clear.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "device_token_keys",
        sa.Column("physical_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("sealed_key", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("retires_at", _TS, nullable=True),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["physical_id"], ["physical_identities.id"]),
        sa.PrimaryKeyConstraint("physical_id", "version"),
    )

    op.create_table(
        "device_public_keys",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("physical_id", sa.String(length=36), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("public_key_pem", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("expires_at", _TS, nullable=True),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["physical_id"], ["physical_identities.id"]),
        sa.PrimaryKeyConstraint("key_id"),
    )
    with op.batch_alter_table("device_public_keys", schema=None) as batch_op:
        batch_op.create_index("ix_device_public_keys_physical", ["physical_id"], unique=False)

    op.create_table(
        "device_token_uses",
        sa.Column("physical_id", sa.String(length=36), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("token_id", sa.String(length=128), nullable=False),
        sa.Column("used_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("physical_id", "method", "token_id"),
    )
    with op.batch_alter_table("device_token_uses", schema=None) as batch_op:
        batch_op.create_index("ix_device_token_uses_expires", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("device_token_uses", schema=None) as batch_op:
        batch_op.drop_index("ix_device_token_uses_expires")
    op.drop_table("device_token_uses")
    with op.batch_alter_table("device_public_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_device_public_keys_physical")
    op.drop_table("device_public_keys")
    op.drop_table("device_token_keys")

"""measured-boot attestation: golden measurements and verified boot attestations

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 23:50:00

`golden_measurements`: known-good PCR values by name (revoked, never deleted).
`boot_attestations`: one row per verified TPM quote, with the PCR values it proved, the golden
measurement it matched (NULL: none) and the verdict.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "golden_measurements",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("pcrs", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "boot_attestations",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("physical_id", sa.String(length=36), nullable=False),
        sa.Column("attested_at", _TS, nullable=False),
        sa.Column("pcrs", sa.JSON(), nullable=False),
        sa.Column("golden", sa.String(length=128), nullable=True),
        sa.Column("verdict", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("ak_public", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["physical_id"], ["physical_identities.id"]),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    op.create_index("ix_boot_attestations_unit_seq", "boot_attestations", ["physical_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_boot_attestations_unit_seq", table_name="boot_attestations")
    op.drop_table("boot_attestations")
    op.drop_table("golden_measurements")

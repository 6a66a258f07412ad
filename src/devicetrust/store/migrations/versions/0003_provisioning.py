"""provisioning: enrollments, challenges, token nonces, registrations, factory keys

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 16:40:00

Database-enforced invariants: one individual enrollment per (unit, attestation method),
unique enrollment names, a token nonce recorded once (a replay cannot insert it again), one
registration per unit.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "provisioning_enrollments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("attestation", sa.String(length=16), nullable=False),
        sa.Column("physical_id", sa.String(length=36), nullable=True),
        sa.Column("key_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("ca_id", sa.String(length=36), nullable=True),
        sa.Column("sealed_key", sa.LargeBinary(), nullable=True),
        sa.Column("tpm_ek_public", sa.LargeBinary(), nullable=True),
        sa.Column("tpm_ek_certificate", sa.LargeBinary(), nullable=True),
        sa.Column("allocation", sa.String(length=16), nullable=False),
        sa.Column("static_name", sa.String(length=128), nullable=True),
        sa.Column("pool_pattern", sa.String(length=200), nullable=True),
        sa.Column("reprovision", sa.String(length=16), nullable=False),
        sa.Column("replaces", sa.String(length=128), nullable=True),
        sa.Column("require_hardware_key", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("expires_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["ca_id"], ["pki_cas.id"]),
        sa.ForeignKeyConstraint(["physical_id"], ["physical_identities.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("provisioning_enrollments", schema=None) as batch_op:
        batch_op.create_index(
            "uq_prov_enrollment_unit_method", ["physical_id", "attestation"], unique=True
        )
        batch_op.create_index(
            "ix_prov_enrollments_kind_method", ["kind", "attestation"], unique=False
        )

    op.create_table(
        "provisioning_challenges",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("physical_id", sa.String(length=36), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("expected", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("used_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(["physical_id"], ["physical_identities.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("provisioning_challenges", schema=None) as batch_op:
        batch_op.create_index("ix_prov_challenges_expires", ["expires_at"], unique=False)

    op.create_table(
        "provisioning_nonces",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("physical_id", sa.String(length=36), nullable=False),
        sa.Column("used_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("nonce"),
    )
    with op.batch_alter_table("provisioning_nonces", schema=None) as batch_op:
        batch_op.create_index("ix_prov_nonces_expires", ["expires_at"], unique=False)

    op.create_table(
        "provisioning_registrations",
        sa.Column("physical_id", sa.String(length=36), nullable=False),
        sa.Column("enrollment_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("logical_name", sa.String(length=128), nullable=True),
        sa.Column("serial", sa.String(length=40), nullable=True),
        sa.Column("requested_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["enrollment_id"], ["provisioning_enrollments.id"]),
        sa.ForeignKeyConstraint(["physical_id"], ["physical_identities.id"]),
        sa.PrimaryKeyConstraint("physical_id"),
    )
    with op.batch_alter_table("provisioning_registrations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_provisioning_registrations_status"), ["status"], unique=False
        )

    op.create_table(
        "provisioning_factory_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("public_key_pem", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("provisioning_factory_keys")
    with op.batch_alter_table("provisioning_registrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provisioning_registrations_status"))
    op.drop_table("provisioning_registrations")
    with op.batch_alter_table("provisioning_nonces", schema=None) as batch_op:
        batch_op.drop_index("ix_prov_nonces_expires")
    op.drop_table("provisioning_nonces")
    with op.batch_alter_table("provisioning_challenges", schema=None) as batch_op:
        batch_op.drop_index("ix_prov_challenges_expires")
    op.drop_table("provisioning_challenges")
    with op.batch_alter_table("provisioning_enrollments", schema=None) as batch_op:
        batch_op.drop_index("ix_prov_enrollments_kind_method")
        batch_op.drop_index("uq_prov_enrollment_unit_method")
    op.drop_table("provisioning_enrollments")

"""certificate authority: CAs, issued certificates, CRLs, outbox consumer cursors

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 16:00:00

Database-enforced invariants: one active CA per role (partial unique index, SQLite and
PostgreSQL), one CA record per CA key, one certificate per serial (RFC 5280 §4.1.2.2).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ACTIVE = sa.text("status = 'active'")


def upgrade() -> None:
    op.create_table(
        "event_cursors",
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer"),
    )
    op.create_table(
        "consumed_events",
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "outbox_id"),
    )
    op.create_table(
        "pki_cas",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.String(length=36), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("key_uri", sa.Text(), nullable=False),
        sa.Column("cert_der", sa.LargeBinary(), nullable=False),
        sa.Column("cert_sha256", sa.String(length=64), nullable=False),
        sa.Column("spki_sha256", sa.String(length=64), nullable=False),
        sa.Column("external_chain_pem", sa.Text(), nullable=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["parent_id"], ["pki_cas.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cert_sha256"),
        sa.UniqueConstraint("spki_sha256"),
    )
    with op.batch_alter_table("pki_cas", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pki_cas_status"), ["status"], unique=False)
        batch_op.create_index(
            "uq_pki_ca_active_role",
            ["role"],
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        )

    op.create_table(
        "pki_certificates",
        sa.Column("id", _BIGINT_ID, autoincrement=True, nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("issuer_ca_id", sa.String(length=36), nullable=False),
        sa.Column("profile", sa.String(length=16), nullable=False),
        sa.Column("physical_id", sa.String(length=36), nullable=True),
        sa.Column("logical_name", sa.String(length=128), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(length=64), nullable=False),
        sa.Column("spki_sha256", sa.String(length=64), nullable=False),
        sa.Column("key_uri", sa.Text(), nullable=True),
        sa.Column("renewed_from", sa.String(length=40), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.String(length=200), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revocation_reason", sa.String(length=32), nullable=True),
        sa.Column("invalidity_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["issuer_ca_id"], ["pki_cas.id"]),
        sa.ForeignKeyConstraint(["physical_id"], ["physical_identities.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("fingerprint_sha256"),
        sa.UniqueConstraint("serial"),
    )
    with op.batch_alter_table("pki_certificates", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pki_certificates_issuer_revoked", ["issuer_ca_id", "revoked_at"], unique=False
        )
        batch_op.create_index(
            "ix_pki_certificates_physical", ["physical_id", "not_after"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_pki_certificates_spki_sha256"), ["spki_sha256"], unique=False
        )

    op.create_table(
        "pki_crls",
        sa.Column("ca_id", sa.String(length=36), nullable=False),
        sa.Column("crl_number", sa.BigInteger(), nullable=False),
        sa.Column("this_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["ca_id"], ["pki_cas.id"]),
        sa.PrimaryKeyConstraint("ca_id"),
    )


def downgrade() -> None:
    op.drop_table("pki_crls")
    with op.batch_alter_table("pki_certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pki_certificates_spki_sha256"))
        batch_op.drop_index("ix_pki_certificates_physical")
        batch_op.drop_index("ix_pki_certificates_issuer_revoked")
    op.drop_table("pki_certificates")
    with op.batch_alter_table("pki_cas", schema=None) as batch_op:
        batch_op.drop_index("uq_pki_ca_active_role", sqlite_where=_ACTIVE, postgresql_where=_ACTIVE)
        batch_op.drop_index(batch_op.f("ix_pki_cas_status"))
    op.drop_table("pki_cas")
    op.drop_table("consumed_events")
    op.drop_table("event_cursors")

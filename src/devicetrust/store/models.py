"""Tables. The schema is owned by the Alembic migrations in `migrations/versions`;
these models must match them (a test compares the two).

Invariants the database itself enforces (so no code path can break them):
- a logical identity has at most one open binding (partial unique index `uq_binding_open_logical`);
- a physical unit has at most one open binding (`uq_binding_open_physical`);
- names of current logical identities are unique; audit entries have unique sequence numbers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from devicetrust.store.types import UTCDateTime

_BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class PhysicalIdentityRow(Base):
    __tablename__ = "physical_identities"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    model: Mapped[str] = mapped_column(String(128))
    hardware_serials: Mapped[dict[str, Any]] = mapped_column(default=dict)
    key_fingerprints: Mapped[list[Any]] = mapped_column(default=list)
    manufactured_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(32), index=True)
    quarantined_from: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime]


class LogicalIdentityRow(Base):
    __tablename__ = "logical_identities"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RetiredNameRow(Base):
    """A former name of a logical identity, resolvable until `resolvable_until`."""

    __tablename__ = "retired_names"

    id: Mapped[int] = mapped_column(_BigIntId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    logical_id: Mapped[str] = mapped_column(ForeignKey("logical_identities.id"))
    retired_at: Mapped[datetime]
    resolvable_until: Mapped[datetime]


class NameReleasesRow(Base):
    """How many changes may have freed a held logical name (unbind, decommissioning, rename):
    one row, raised in the transaction of each (migration 0009). Pool allocation compares it
    with the count its remembered first free name was found under."""

    __tablename__ = "logical_name_releases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(BigInteger)


class BindingRow(Base):
    __tablename__ = "bindings"
    __table_args__ = (
        Index(
            "uq_binding_open_logical",
            "logical_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index(
            "uq_binding_open_physical",
            "physical_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index("ix_bindings_logical_started", "logical_id", "started_at"),
        Index("ix_bindings_physical_started", "physical_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(_BigIntId, primary_key=True, autoincrement=True)
    logical_id: Mapped[str] = mapped_column(ForeignKey("logical_identities.id"))
    physical_id: Mapped[str] = mapped_column(ForeignKey("physical_identities.id"))
    name_at_start: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime]
    start_reason: Mapped[str] = mapped_column(String(64))
    started_by: Mapped[str] = mapped_column(String(200))
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(64))
    ended_by: Mapped[str | None] = mapped_column(String(200))


class OutboxRow(Base):
    """Events written in the same transaction as the change they describe."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(_BigIntId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    occurred_at: Mapped[datetime]
    subject: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]]
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class WebhookRow(Base):
    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list[Any]] = mapped_column(default=list)
    # AES-256-GCM envelope of the signing secret under the server KEK; never the clear secret.
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))


class DeliveryRow(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "outbox_id", name="uq_delivery_once"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(_BigIntId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id"))
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"))
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]


class AuditEntryRow(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(_BigIntId, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(200), index=True)
    details: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """One row: the last sequence number and hash. Locked while appending, which
    serialises appends (no fork in the chain) and lets `verify` detect a cut tail."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(_BigIntId)
    hash: Mapped[str] = mapped_column(String(64))


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    # SHA-256 of a 256-bit random secret: a fast hash is enough for full-entropy secrets.
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None]


# ---- certificate authority (pki) -----------------------------------------------------------
# Invariants the database enforces for the CA: at most one active CA per role
# (`uq_pki_ca_active_role`); a CA key certifies one CA record (`spki_sha256` unique); a
# certificate serial is issued once (`serial` unique: RFC 5280 §4.1.2.2).


class CertificateAuthorityRow(Base):
    """A CA devicetrust signs with: its certificate, where its key lives, active or retired."""

    __tablename__ = "pki_cas"
    __table_args__ = (
        Index(
            "uq_pki_ca_active_role",
            "role",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # root | issuing | manufacturing
    status: Mapped[str] = mapped_column(String(16), index=True)  # active | retired
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("pki_cas.id"))
    subject: Mapped[str] = mapped_column(Text)
    algorithm: Mapped[str] = mapped_column(String(16))
    key_uri: Mapped[str] = mapped_column(Text)
    cert_der: Mapped[bytes] = mapped_column(LargeBinary)
    cert_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    spki_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # PEM certificates above an imported CA (a company PKI), for chains; None for our own.
    external_chain_pem: Mapped[str | None] = mapped_column(Text)
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    retired_at: Mapped[datetime | None]


class IssuedCertificateRow(Base):
    """Every certificate a devicetrust CA signed, written before the certificate is returned."""

    __tablename__ = "pki_certificates"
    __table_args__ = (
        Index("ix_pki_certificates_physical", "physical_id", "not_after"),
        Index("ix_pki_certificates_issuer_revoked", "issuer_ca_id", "revoked_at"),
    )

    id: Mapped[int] = mapped_column(_BigIntId, primary_key=True, autoincrement=True)
    serial: Mapped[str] = mapped_column(String(40), unique=True)  # 40 lowercase hex digits
    issuer_ca_id: Mapped[str] = mapped_column(ForeignKey("pki_cas.id"))
    profile: Mapped[str] = mapped_column(String(16))
    physical_id: Mapped[str | None] = mapped_column(ForeignKey("physical_identities.id"))
    logical_name: Mapped[str | None] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(Text)
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    der: Mapped[bytes] = mapped_column(LargeBinary)
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    spki_sha256: Mapped[str] = mapped_column(String(64), index=True)
    # Set only for certificates whose key devicetrust itself holds (delegated OCSP signers).
    key_uri: Mapped[str | None] = mapped_column(Text)
    renewed_from: Mapped[str | None] = mapped_column(String(40))
    issued_at: Mapped[datetime]
    issued_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None]
    revocation_reason: Mapped[str | None] = mapped_column(String(32))
    invalidity_date: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(200))


class CrlRow(Base):
    """The latest CRL of a CA; `crl_number` only grows (RFC 5280 §5.2.3)."""

    __tablename__ = "pki_crls"

    ca_id: Mapped[str] = mapped_column(ForeignKey("pki_cas.id"), primary_key=True)
    crl_number: Mapped[int] = mapped_column(BigInteger)
    this_update: Mapped[datetime]
    next_update: Mapped[datetime]
    entries: Mapped[int] = mapped_column(Integer)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    # A revocation since this CRL was signed: regenerate it (`refresh_due`).
    stale: Mapped[bool] = mapped_column(Boolean, default=False)


class EventCursorRow(Base):
    """An outbox consumer's low-water mark: every event it handles with id <= `outbox_id`
    has been handled."""

    __tablename__ = "event_cursors"

    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    outbox_id: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


class ConsumedEventRow(Base):
    """Events a consumer handled above its cursor (the outbox may commit ids out of order)."""

    __tablename__ = "consumed_events"

    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    outbox_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    consumed_at: Mapped[datetime]


# ---- provisioning --------------------------------------------------------------------------
# Invariants the database enforces: one individual enrollment per (unit, attestation method)
# (`uq_prov_enrollment_unit_method`; group enrollments have no unit), enrollment names are
# unique, a token nonce is recorded once (primary key: a replay cannot insert it again), one
# registration per unit.


class EnrollmentRow(Base):
    """Who may provision and how it proves it. Secrets only sealed (vault), never clear."""

    __tablename__ = "provisioning_enrollments"
    __table_args__ = (
        Index("uq_prov_enrollment_unit_method", "physical_id", "attestation", unique=True),
        Index("ix_prov_enrollments_kind_method", "kind", "attestation"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # individual | group
    attestation: Mapped[str] = mapped_column(String(16))  # x509 | symmetric-key | tpm
    physical_id: Mapped[str | None] = mapped_column(ForeignKey("physical_identities.id"))
    key_fingerprint: Mapped[str | None] = mapped_column(String(64))
    ca_id: Mapped[str | None] = mapped_column(ForeignKey("pki_cas.id"))
    # AES-256-GCM envelope (vault) of the per-device or group key; never the clear key.
    sealed_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    tpm_ek_public: Mapped[bytes | None] = mapped_column(LargeBinary)
    tpm_ek_certificate: Mapped[bytes | None] = mapped_column(LargeBinary)
    allocation: Mapped[str] = mapped_column(String(16))  # static | pool | manual
    static_name: Mapped[str | None] = mapped_column(String(128))
    pool_pattern: Mapped[str | None] = mapped_column(String(200))
    reprovision: Mapped[str] = mapped_column(String(16))  # keep | reassign
    replaces: Mapped[str | None] = mapped_column(String(128))
    require_hardware_key: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime]


class ProvisioningChallengeRow(Base):
    """A single-use challenge issued to a unit (x509 nonce, TPM credential)."""

    __tablename__ = "provisioning_challenges"
    __table_args__ = (Index("ix_prov_challenges_expires", "expires_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    physical_id: Mapped[str] = mapped_column(ForeignKey("physical_identities.id"))
    method: Mapped[str] = mapped_column(String(16))
    expected: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class ProvisioningNonceRow(Base):
    """A symmetric-key token nonce already used; kept until the token would have expired."""

    __tablename__ = "provisioning_nonces"
    __table_args__ = (Index("ix_prov_nonces_expires", "expires_at"),)

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    physical_id: Mapped[str] = mapped_column(String(36))
    used_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class RegistrationRow(Base):
    """A unit's provisioning state: pending (manual), approved, or assigned."""

    __tablename__ = "provisioning_registrations"

    physical_id: Mapped[str] = mapped_column(ForeignKey("physical_identities.id"), primary_key=True)
    enrollment_id: Mapped[str] = mapped_column(ForeignKey("provisioning_enrollments.id"))
    status: Mapped[str] = mapped_column(String(16), index=True)
    logical_name: Mapped[str | None] = mapped_column(String(128))
    serial: Mapped[str | None] = mapped_column(String(40))
    requested_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class FactoryKeyRow(Base):
    """A factory's public key, trusted to sign manufacturing manifests."""

    __tablename__ = "provisioning_factory_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    public_key_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None]


# Tables of later concerns live in their own modules; importing them here completes
# `Base.metadata` for the migrations check.
from devicetrust.store import (  # noqa: E402, F401
    models_attestation,
    models_data_plane,
    models_device_auth,
    models_security_policy,
)

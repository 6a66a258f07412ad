"""Row lookups and row-to-record conversion shared by the CA service modules.

Never writes; never resolves a unit, CA or certificate by anything weaker than its exact id
or serial (no prefix or case-folded matches).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select
from sqlalchemy.orm import Session

from devicetrust.domain.errors import NotFound
from devicetrust.domain.ids import LogicalName, PhysicalId, parse_physical_id
from devicetrust.pki.errors import CaNotFound, CaNotInitialised, CertificateNotFound
from devicetrust.pki.keys import KeyAlgorithm
from devicetrust.pki.records import CaRecord, CaRole, CaStatus, IssuedCertificate, Profile
from devicetrust.pki.serials import Serial, serial_key, serial_text
from devicetrust.store.models import (
    BindingRow,
    CertificateAuthorityRow,
    IssuedCertificateRow,
    LogicalIdentityRow,
    PhysicalIdentityRow,
)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def public_key_sha256(certificate: x509.Certificate) -> str:
    spki = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return sha256_hex(spki)


# ---- registry --------------------------------------------------------------------------------


def physical_row(session: Session, physical_id: str, *, lock: bool = False) -> PhysicalIdentityRow:
    pid = parse_physical_id(physical_id)
    stmt = select(PhysicalIdentityRow).where(PhysicalIdentityRow.id == pid)
    row = session.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()
    if row is None:
        raise NotFound("identity.physical_not_found", f"no physical identity {pid}", id=pid)
    return row


def logical_name_of(session: Session, physical_id: str) -> LogicalName | None:
    """The current name of the logical identity the unit holds now, if any."""
    name = session.execute(
        select(LogicalIdentityRow.name)
        .join(BindingRow, BindingRow.logical_id == LogicalIdentityRow.id)
        .where(BindingRow.physical_id == physical_id, BindingRow.ended_at.is_(None))
    ).scalar_one_or_none()
    return LogicalName(name) if name is not None else None


# ---- CAs -------------------------------------------------------------------------------------


def active_ca(session: Session, role: CaRole) -> CertificateAuthorityRow:
    row = session.execute(
        select(CertificateAuthorityRow).where(
            CertificateAuthorityRow.role == role.value,
            CertificateAuthorityRow.status == CaStatus.ACTIVE.value,
        )
    ).scalar_one_or_none()
    if row is None:
        raise CaNotInitialised(
            f"there is no active {role.value} CA: run `devicetrust ca init` (or import one)",
            role=role.value,
        )
    return row


def active_ca_or_none(
    session: Session, role: CaRole, *, lock: bool = False
) -> CertificateAuthorityRow | None:
    stmt = select(CertificateAuthorityRow).where(
        CertificateAuthorityRow.role == role.value,
        CertificateAuthorityRow.status == CaStatus.ACTIVE.value,
    )
    return session.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()


def ca_row(session: Session, ca_id: str, *, lock: bool = False) -> CertificateAuthorityRow:
    stmt = select(CertificateAuthorityRow).where(CertificateAuthorityRow.id == str(ca_id)[:36])
    row = session.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()
    if row is None:
        raise CaNotFound(f"no CA {str(ca_id)[:36]!r}", ca_id=str(ca_id)[:36])
    return row


def ca_certificate(row: CertificateAuthorityRow) -> x509.Certificate:
    return x509.load_der_x509_certificate(row.cert_der)


def to_ca(row: CertificateAuthorityRow) -> CaRecord:
    return CaRecord(
        ca_id=row.id,
        role=CaRole(row.role),
        status=CaStatus(row.status),
        subject=row.subject,
        algorithm=KeyAlgorithm.parse(row.algorithm),
        key_uri=row.key_uri,
        certificate=ca_certificate(row),
        parent_id=row.parent_id,
        external=row.external_chain_pem is not None,
        created_at=row.created_at,
        retired_at=row.retired_at,
    )


# ---- issued certificates ---------------------------------------------------------------------


def cert_row(session: Session, serial: Serial, *, lock: bool = False) -> IssuedCertificateRow:
    stmt = select(IssuedCertificateRow).where(IssuedCertificateRow.serial == serial_key(serial))
    row = session.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()
    if row is None:
        raise CertificateNotFound(
            f"no certificate with serial {serial_text(serial)}", serial=serial_text(serial)
        )
    return row


def to_issued(row: IssuedCertificateRow) -> IssuedCertificate:
    return IssuedCertificate(
        serial=Serial(int(row.serial, 16)),
        issuer_ca_id=row.issuer_ca_id,
        profile=Profile(row.profile),
        physical_id=PhysicalId(row.physical_id) if row.physical_id else None,
        logical_name=LogicalName(row.logical_name) if row.logical_name else None,
        subject=row.subject,
        not_before=row.not_before,
        not_after=row.not_after,
        fingerprint_sha256=row.fingerprint_sha256,
        spki_sha256=row.spki_sha256,
        der=row.der,
        issued_at=row.issued_at,
        issued_by=row.issued_by,
        revoked_at=row.revoked_at,
        revocation_reason=(
            x509.ReasonFlags(row.revocation_reason) if row.revocation_reason else None
        ),
        renewed_from=Serial(int(row.renewed_from, 16)) if row.renewed_from else None,
    )


def valid_certs_of(
    session: Session, physical_id: str, now: datetime, *, lock: bool = False
) -> list[IssuedCertificateRow]:
    """The unit's certificates that are unexpired and not revoked (nor on hold)."""
    stmt = (
        select(IssuedCertificateRow)
        .where(
            IssuedCertificateRow.physical_id == physical_id,
            IssuedCertificateRow.not_after > now,
            IssuedCertificateRow.revoked_at.is_(None),
        )
        .order_by(IssuedCertificateRow.id)
    )
    return list(session.execute(stmt.with_for_update() if lock else stmt).scalars())

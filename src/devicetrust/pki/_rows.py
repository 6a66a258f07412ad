"""Row lookups and row-to-record conversion shared by the CA service modules.

Never writes; never resolves a unit, CA or certificate by anything weaker than its exact id
or serial (no prefix or case-folded matches).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import (
    Boolean,
    CompoundSelect,
    String,
    and_,
    bindparam,
    literal,
    select,
    union,
)
from sqlalchemy.orm import Session

from devicetrust.domain.ids import LogicalName, PhysicalId
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.pki._issuance_rules import KeyOwner
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


# The statements below are built once: issuance runs them for every certificate, and building
# a statement costs more than running it on SQLite.
_UNITS_FOR_ISSUANCE = (
    select(PhysicalIdentityRow.id, PhysicalIdentityRow.state, LogicalIdentityRow.name)
    .outerjoin(
        BindingRow,
        and_(BindingRow.physical_id == PhysicalIdentityRow.id, BindingRow.ended_at.is_(None)),
    )
    .outerjoin(LogicalIdentityRow, LogicalIdentityRow.id == BindingRow.logical_id)
    .where(PhysicalIdentityRow.id.in_(bindparam("ids", expanding=True)))
    .order_by(PhysicalIdentityRow.id)
    .with_for_update(of=PhysicalIdentityRow)
)


def units_for_issuance(
    session: Session, physical_ids: Collection[PhysicalId]
) -> dict[str, tuple[DeviceState, LogicalName | None]]:
    """Each unit's state and current logical name, in one round trip for any number of
    units. The units' rows are locked (in id order, so two batches cannot deadlock) until
    the transaction ends: no state change or rename slips in between check and issue."""
    if not physical_ids:
        return {}
    rows = session.execute(_UNITS_FOR_ISSUANCE, {"ids": sorted(physical_ids)})
    # One open binding per unit at most (uq_binding_open_physical): one row per unit.
    return {
        pid: (DeviceState(state), LogicalName(name) if name is not None else None)
        for pid, state, name in rows
    }


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
        raise no_active_ca(role)
    return row


def no_active_ca(role: CaRole) -> CaNotInitialised:
    return CaNotInitialised(
        f"there is no active {role.value} CA: run `devicetrust ca init` (or import one)",
        role=role.value,
    )


_ACTIVE_CA_IDS = select(
    CertificateAuthorityRow.role, CertificateAuthorityRow.id, CertificateAuthorityRow.cert_sha256
).where(
    CertificateAuthorityRow.role.in_(bindparam("roles", expanding=True)),
    CertificateAuthorityRow.status == CaStatus.ACTIVE.value,
)


def active_ca_ids(session: Session, roles: Collection[CaRole]) -> dict[CaRole, tuple[str, str]]:
    """(id, certificate SHA-256) of the active CA of each role that has one; one round trip.
    The id says which CA signs; the hash proves a cached copy of its certificate current."""
    if not roles:
        return {}
    rows = session.execute(_ACTIVE_CA_IDS, {"roles": sorted(role.value for role in roles)})
    return {CaRole(role): (ca_id, cert_sha256) for role, ca_id, cert_sha256 in rows}


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

# Both halves' literal columns stand for typed ones; rows are read by name.
_KEY_OWNERS: CompoundSelect[Any] = union(
    select(
        literal(True).label("is_ca"),
        CertificateAuthorityRow.spki_sha256,
        literal(None, String).label("physical_id"),
        literal(Profile.CA.value, String).label("profile"),
        literal(None, String).label("reason"),
    ).where(CertificateAuthorityRow.spki_sha256.in_(bindparam("keys", expanding=True))),
    select(
        literal(False).label("is_ca"),
        IssuedCertificateRow.spki_sha256,
        IssuedCertificateRow.physical_id,
        IssuedCertificateRow.profile,
        IssuedCertificateRow.revocation_reason,
    ).where(IssuedCertificateRow.spki_sha256.in_(bindparam("keys", expanding=True))),
)


# `_KEY_OWNERS` and the active CA of each role asked for, in one round trip: an active CA's
# row has no `is_ca` (NULL), its certificate hash as `spki_sha256`, its id as `physical_id`
# and its role as `profile`.
_OWNERS_AND_ACTIVE_CAS: CompoundSelect[Any] = union(
    *_KEY_OWNERS.selects,
    select(
        literal(None, Boolean).label("is_ca"),
        CertificateAuthorityRow.cert_sha256,
        CertificateAuthorityRow.id,
        CertificateAuthorityRow.role,
        literal(None, String).label("reason"),
    ).where(
        CertificateAuthorityRow.role.in_(bindparam("roles", expanding=True)),
        CertificateAuthorityRow.status == CaStatus.ACTIVE.value,
    ),
)


@dataclass(frozen=True, slots=True)
class IssuanceLookups:
    """What issuance reads besides the units: the active CA of each role (id, certificate
    SHA-256), which keys are CA keys, and every owner each key was certified for."""

    active: dict[CaRole, tuple[str, str]]
    ca_keys: set[str]
    owners: dict[str, list[KeyOwner]]


def issuance_lookups(
    session: Session, roles: Collection[CaRole], spki_sha256s: Collection[str]
) -> IssuanceLookups:
    """`active_ca_ids` and `key_owners` in one round trip."""
    found = IssuanceLookups({}, set(), {})
    params = {"roles": sorted(r.value for r in roles), "keys": sorted(spki_sha256s)}
    for row in session.execute(_OWNERS_AND_ACTIVE_CAS, params):
        if row.is_ca is None:
            found.active[CaRole(row.profile)] = (row.physical_id, row.spki_sha256)
        elif row.is_ca:
            found.ca_keys.add(row.spki_sha256)
        else:
            found.owners.setdefault(row.spki_sha256, []).append(
                (row.physical_id, row.profile, row.reason)
            )
    return found


def key_owners(
    session: Session, spki_sha256s: Collection[str]
) -> tuple[set[str], dict[str, list[KeyOwner]]]:
    """Which of these keys are CA keys, and every distinct owner each key was certified
    for; one round trip for any number of keys."""
    if not spki_sha256s:
        return set(), {}
    cas: set[str] = set()
    owners: dict[str, list[KeyOwner]] = {}
    for row in session.execute(_KEY_OWNERS, {"keys": sorted(spki_sha256s)}):
        if row.is_ca:
            cas.add(row.spki_sha256)
        else:
            owners.setdefault(row.spki_sha256, []).append(
                (row.physical_id, row.profile, row.reason)
            )
    return cas, owners


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

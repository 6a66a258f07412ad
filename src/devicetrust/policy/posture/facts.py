"""What the posture report is computed from: live state, read in a few bulk queries.

Units and their lifecycle state, open bindings, provisioning registrations with the
enrollment (and so the attestation method) that admitted them, the operational certificates
valid now and any other unit certified for the same key, the latest verified boot quote,
the policy layers and relaxations, and, for the platform, how CA keys and stored secrets are kept.

Read-only: one snapshot, no writes. Never types a fact in: a measure the platform holds no
data for is left for `measures.py` to report as unknown.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from devicetrust.domain.errors import DeviceTrustError
from devicetrust.domain.ids import PhysicalId
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.pki.keys import key_uri_scheme
from devicetrust.pki.serials import parse_serial, serial_key, serial_text
from devicetrust.policy import _rows
from devicetrust.policy.evaluation import key_spec
from devicetrust.policy.model import SecurityPolicy
from devicetrust.policy.posture.boot import BootFacts, latest_boots
from devicetrust.policy.relaxations import Relaxation
from devicetrust.policy.resolution import EffectivePolicy, Layer, resolve
from devicetrust.provisioning.records import AttestationKind
from devicetrust.store.models import (
    BindingRow,
    CertificateAuthorityRow,
    EnrollmentRow,
    IssuedCertificateRow,
    LogicalIdentityRow,
    PhysicalIdentityRow,
    RegistrationRow,
    WebhookRow,
)
from devicetrust.vault import OVERHEAD

_DEVICE_PROFILE = "device"
_MIN_DEVICE_KEY = 32  # enrollments hold 32-64 byte keys


@dataclass(frozen=True, slots=True)
class CertFacts:
    serial: str
    not_before: datetime
    not_after: datetime
    spki_sha256: str
    algorithm: str
    size: int


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    physical_id: PhysicalId
    model: str
    state: DeviceState
    logical_name: str | None
    enrollment: str | None
    attestation: AttestationKind | None  # of the enrollment that admitted the unit
    require_hardware_key: bool  # the enrollment bound the CSR key to the attested key
    enrollment_key_sealed: bool | None  # None: the enrollment holds no key
    provisioned_spki: str | None  # key of the certificate issued at provisioning
    certificates: tuple[CertFacts, ...]  # operational certificates valid now
    shared_key_units: int  # other units certified for one of this unit's keys
    effective: EffectivePolicy
    boot: BootFacts | None = None  # latest verified TPM quote (None: never attested)


@dataclass(frozen=True, slots=True)
class CaKeyFacts:
    ca_id: str
    role: str
    scheme: str  # file | pkcs11 | <other>
    external: bool


@dataclass(frozen=True, slots=True)
class PlatformFacts:
    ca_keys: tuple[CaKeyFacts, ...]
    sealed_keys: int  # enrollment keys in the sealed-envelope shape
    unsealed_keys: int  # enrollment keys that are not
    sealed_webhook_secrets: int
    unsealed_webhook_secrets: int


def looks_sealed(blob: bytes, minimum_secret: int) -> bool:
    """The vault's envelope is `OVERHEAD` bytes plus the secret: a clear key is too short."""
    return len(blob) >= OVERHEAD + minimum_secret


def gather_devices(
    session: Session,
    now: datetime,
    baseline: SecurityPolicy,
    *,
    physical_ids: Iterable[str] | None = None,
) -> list[DeviceFacts]:
    """Facts of the given units (all units when None), in manufacturing order."""
    units_stmt = select(PhysicalIdentityRow).order_by(
        PhysicalIdentityRow.manufactured_at, PhysicalIdentityRow.id
    )
    wanted = list(physical_ids) if physical_ids is not None else None
    if wanted is not None:
        units_stmt = units_stmt.where(PhysicalIdentityRow.id.in_(wanted))
    units = list(session.execute(units_stmt).scalars())
    ids = [u.id for u in units]
    names = _open_names(session, ids if wanted is not None else None)
    registrations = _registrations(session, ids if wanted is not None else None)
    certs = _valid_certs(session, now, ids if wanted is not None else None)
    shared = _shared_keys(session, {c.spki_sha256 for cs in certs.values() for c in cs})
    provisioned = _spki_of_serials(
        session, [reg[4] for reg in registrations.values() if reg[4] is not None]
    )  # by stored serial
    boots = latest_boots(session, ids if wanted is not None else None)
    layers: list[Layer] = _rows.layers(session)
    relaxations: list[Relaxation] = _rows.live_relaxations(session, now)
    out: list[DeviceFacts] = []
    for unit in units:
        reg = registrations.get(unit.id)
        enrollment, attestation, hardware, sealed, serial = reg or (None, None, False, None, None)
        mine = certs.get(unit.id, ())
        others = {pid for c in mine for pid in shared.get(c.spki_sha256, set())} - {unit.id}
        pid = PhysicalId(unit.id)
        out.append(
            DeviceFacts(
                physical_id=pid,
                model=unit.model,
                state=DeviceState(unit.state),
                logical_name=names.get(unit.id),
                enrollment=enrollment,
                attestation=attestation,
                require_hardware_key=hardware,
                enrollment_key_sealed=sealed,
                provisioned_spki=provisioned.get(serial) if serial else None,
                certificates=tuple(mine),
                shared_key_units=len(others),
                effective=resolve(
                    layers,
                    relaxations,
                    now,
                    physical_id=pid,
                    enrollment=enrollment,
                    baseline=baseline,
                ),
                boot=boots.get(unit.id),
            )
        )
    return out


def _open_names(session: Session, ids: list[str] | None) -> dict[str, str]:
    stmt = (
        select(BindingRow.physical_id, LogicalIdentityRow.name)
        .join(LogicalIdentityRow, LogicalIdentityRow.id == BindingRow.logical_id)
        .where(BindingRow.ended_at.is_(None))
    )
    if ids is not None:
        stmt = stmt.where(BindingRow.physical_id.in_(ids))
    return {pid: name for pid, name in session.execute(stmt)}


_Registration = tuple[str, AttestationKind, bool, bool | None, str | None]


def _registrations(session: Session, ids: list[str] | None) -> dict[str, _Registration]:
    stmt = select(
        RegistrationRow.physical_id,
        RegistrationRow.serial,
        EnrollmentRow.name,
        EnrollmentRow.attestation,
        EnrollmentRow.require_hardware_key,
        EnrollmentRow.sealed_key,
    ).join(EnrollmentRow, EnrollmentRow.id == RegistrationRow.enrollment_id)
    if ids is not None:
        stmt = stmt.where(RegistrationRow.physical_id.in_(ids))
    out: dict[str, _Registration] = {}
    for pid, serial, name, attestation, hardware, sealed_key in session.execute(stmt):
        sealed = None if sealed_key is None else looks_sealed(sealed_key, _MIN_DEVICE_KEY)
        kind = AttestationKind(attestation)
        out[pid] = (name, kind, bool(hardware), sealed, _stored_serial(serial))
    return out


def _stored_serial(serial: str | None) -> str | None:
    """A registration keeps the serial as openssl prints it; certificates are keyed by the
    stored form (40 lowercase hex digits)."""
    if serial is None:
        return None
    try:
        return serial_key(parse_serial(serial))
    except DeviceTrustError:
        return None


def _valid_certs(
    session: Session, now: datetime, ids: list[str] | None
) -> dict[str, list[CertFacts]]:
    t = IssuedCertificateRow
    stmt = select(t.physical_id, t.serial, t.not_before, t.not_after, t.spki_sha256, t.der).where(
        t.profile == _DEVICE_PROFILE,
        t.revoked_at.is_(None),
        t.not_before <= now,
        t.not_after > now,
        t.physical_id.is_not(None),
    )
    if ids is not None:
        stmt = stmt.where(t.physical_id.in_(ids))
    out: dict[str, list[CertFacts]] = defaultdict(list)
    for pid, serial, not_before, not_after, spki, der in session.execute(stmt):
        if pid is None:
            continue
        try:
            algorithm, size = key_spec(x509.load_der_x509_certificate(der).public_key())
        except (ValueError, DeviceTrustError):
            algorithm, size = "unknown", 0
        shown = serial_text(int(serial, 16))
        out[pid].append(CertFacts(shown, not_before, not_after, spki, algorithm, size))
    return out


def _shared_keys(session: Session, spkis: set[str]) -> dict[str, set[str]]:
    """For each key, every unit holding a certificate for it (revoked ones excluded)."""
    out: dict[str, set[str]] = defaultdict(set)
    t = IssuedCertificateRow
    keys = sorted(spkis)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        stmt = (
            select(t.spki_sha256, t.physical_id)
            .where(
                t.spki_sha256.in_(chunk),
                t.physical_id.is_not(None),
                t.revoked_at.is_(None),
            )
            .group_by(t.spki_sha256, t.physical_id)
        )
        for spki, pid in session.execute(stmt):
            if pid is not None:
                out[spki].add(pid)
    return out


def _spki_of_serials(session: Session, serials: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    t = IssuedCertificateRow
    for start in range(0, len(serials), 500):
        chunk = serials[start : start + 500]
        for serial, spki in session.execute(
            select(t.serial, t.spki_sha256).where(t.serial.in_(chunk))
        ):
            out[serial] = spki
    return out


def gather_platform(session: Session) -> PlatformFacts:
    cas: list[CaKeyFacts] = []
    for row in session.execute(
        select(CertificateAuthorityRow).where(CertificateAuthorityRow.status == "active")
    ).scalars():
        try:
            scheme = key_uri_scheme(row.key_uri)
        except DeviceTrustError:
            scheme = "invalid"
        cas.append(CaKeyFacts(row.id, row.role, scheme, row.external_chain_pem is not None))
    sealed = unsealed = 0
    for (blob,) in session.execute(
        select(EnrollmentRow.sealed_key).where(EnrollmentRow.sealed_key.is_not(None))
    ):
        if blob is not None and looks_sealed(blob, _MIN_DEVICE_KEY):
            sealed += 1
        else:
            unsealed += 1
    hooks_ok = hooks_bad = 0
    for (blob,) in session.execute(select(WebhookRow.secret_sealed)):
        if looks_sealed(blob, 16):
            hooks_ok += 1
        else:
            hooks_bad += 1
    return PlatformFacts(
        ca_keys=tuple(sorted(cas, key=lambda c: c.role)),
        sealed_keys=sealed,
        unsealed_keys=unsealed,
        sealed_webhook_secrets=hooks_ok,
        unsealed_webhook_secrets=hooks_bad,
    )


def unit_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(PhysicalIdentityRow)).scalar_one())

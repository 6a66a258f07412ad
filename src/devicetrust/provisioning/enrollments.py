"""Enrollments: which units may provision, how they prove it, what allocation they get.

    individual  one physical identity + its attestation material: birth-key fingerprint
                (x509), a per-device key (symmetric-key), or TPM EK public/certificate
    group       x509: every unit whose birth certificate chains to a CA id;
                symmetric-key: every unit holding HMAC-SHA256(group_key, physical_id)

Keys (group keys, per-device keys) are drawn from the CSPRNG (32 bytes), stored only sealed
by the vault (aad names the enrollment) and returned once, in a `KeyShown` the caller
zeroes. Every change is one transaction with its audit entry and `enrollment.*` event.

Never stores, logs or audits a key in clear, and never returns a sealed key's clear value
except from `create_*` (once) and `derive_device_key` (the factory's flashing step).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import replace as dc_replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from devicetrust.domain.clock import Clock
from devicetrust.domain.events import EventType
from devicetrust.domain.ids import PhysicalId, parse_logical_name, parse_physical_id
from devicetrust.provisioning import _rows
from devicetrust.provisioning.allocation import check_allocation
from devicetrust.provisioning.errors import (
    EnrollmentExists,
    InvalidEnrollment,
    UnknownDevice,
)
from devicetrust.provisioning.records import (
    Allocation,
    AttestationKind,
    Enrollment,
    EnrollmentKind,
    KeyShown,
)
from devicetrust.store.database import Database
from devicetrust.store.journal import record
from devicetrust.store.models import CertificateAuthorityRow, EnrollmentRow, PhysicalIdentityRow
from devicetrust.vault import Sealer

KEY_SIZE = 32
MAX_TPM_BLOB = 8 * 1024
_HEX = frozenset("0123456789abcdef")


def key_aad(enrollment_id: str) -> bytes:
    return f"devicetrust/provisioning/enrollment/{enrollment_id}".encode()


def derive_key(group_key: bytes | bytearray, physical_id: str) -> bytearray:
    """HMAC-SHA256(group_key, physical_id): the per-device key of a group member. The caller
    zeroes the result (the `bytes` hmac returns is dropped at once)."""
    return bytearray(hmac.digest(bytes(group_key), physical_id.encode("ascii"), hashlib.sha256))


def zero(buf: bytearray) -> None:
    buf[:] = bytes(len(buf))


def _fingerprint(value: str) -> str:
    text = value.strip().lower().removeprefix("sha256:")
    if len(text) != 64 or not set(text) <= _HEX:
        raise InvalidEnrollment("a key fingerprint is sha256:<64 hex digits> of the SPKI")
    return text


def _name(value: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 128 or "\x00" in value:
        raise InvalidEnrollment("an enrollment name is 1-128 characters")
    return value.strip()


class Enrollments:
    def __init__(self, db: Database, clock: Clock, sealer: Sealer) -> None:
        self._db = db
        self._clock = clock
        self._sealer = sealer

    # ---- create ---------------------------------------------------------------------------

    def create_individual(
        self,
        physical_id: str,
        attestation: AttestationKind,
        allocation: Allocation,
        *,
        actor: str,
        name: str | None = None,
        key_fingerprint: str | None = None,
        tpm_ek_public: bytes | None = None,
        tpm_ek_certificate: bytes | None = None,
        expires_at: datetime | None = None,
        replaces: str | None = None,
        require_hardware_key: bool = False,
    ) -> Enrollment:
        """An individual x509 or TPM enrollment (symmetric-key: `create_individual_key`)."""
        attestation = AttestationKind(attestation)
        pid = parse_physical_id(physical_id)
        fp: str | None = None
        if attestation is AttestationKind.X509:
            if key_fingerprint is None or tpm_ek_public or tpm_ek_certificate:
                raise InvalidEnrollment("an x509 enrollment names the birth key's fingerprint")
            fp = _fingerprint(key_fingerprint)
        elif attestation is AttestationKind.TPM:
            if not tpm_ek_public or key_fingerprint is not None:
                raise InvalidEnrollment("a TPM enrollment carries the EK public key")
            for blob in (tpm_ek_public, tpm_ek_certificate):
                if blob is not None and len(blob) > MAX_TPM_BLOB:
                    raise InvalidEnrollment(f"TPM material is at most {MAX_TPM_BLOB} bytes")
        else:
            raise InvalidEnrollment(
                "symmetric-key individual enrollments use create_individual_key"
            )
        row = self._new_row(
            EnrollmentKind.INDIVIDUAL,
            attestation,
            allocation,
            name=name or f"{pid}/{attestation.value}",
            physical_id=pid,
            key_fingerprint=fp,
            tpm_ek_public=tpm_ek_public,
            tpm_ek_certificate=tpm_ek_certificate,
            expires_at=expires_at,
            replaces=replaces,
            require_hardware_key=require_hardware_key,
            actor=actor,
        )
        return self._insert(row, actor=actor)

    def create_individual_key(
        self,
        physical_id: str,
        allocation: Allocation,
        *,
        actor: str,
        device_key: bytes | bytearray | None = None,
        name: str | None = None,
        expires_at: datetime | None = None,
        replaces: str | None = None,
    ) -> KeyShown:
        """An individual symmetric-key enrollment; the per-device key is drawn here (or
        given, at least 32 bytes) and returned once."""
        pid = parse_physical_id(physical_id)
        if device_key is not None and not KEY_SIZE <= len(device_key) <= 64:
            raise InvalidEnrollment(f"a device key has {KEY_SIZE}-64 bytes")
        row = self._new_row(
            EnrollmentKind.INDIVIDUAL,
            AttestationKind.SYMMETRIC_KEY,
            allocation,
            name=name or f"{pid}/{AttestationKind.SYMMETRIC_KEY.value}",
            physical_id=pid,
            expires_at=expires_at,
            replaces=replaces,
            actor=actor,
        )
        return self._insert_with_key(row, device_key, actor=actor)

    def create_symmetric_group(
        self,
        name: str,
        allocation: Allocation,
        *,
        actor: str,
        expires_at: datetime | None = None,
    ) -> KeyShown:
        """A symmetric-key group: the group key (32 CSPRNG bytes) is returned once."""
        row = self._new_row(
            EnrollmentKind.GROUP,
            AttestationKind.SYMMETRIC_KEY,
            allocation,
            name=name,
            expires_at=expires_at,
            actor=actor,
        )
        return self._insert_with_key(row, None, actor=actor)

    def create_x509_group(
        self,
        name: str,
        ca_id: str,
        allocation: Allocation,
        *,
        actor: str,
        expires_at: datetime | None = None,
        require_hardware_key: bool = False,
    ) -> Enrollment:
        """Every unit whose birth certificate chains to the CA `ca_id`."""
        row = self._new_row(
            EnrollmentKind.GROUP,
            AttestationKind.X509,
            allocation,
            name=name,
            ca_id=ca_id,
            expires_at=expires_at,
            require_hardware_key=require_hardware_key,
            actor=actor,
        )
        return self._insert(row, actor=actor)

    # ---- change ---------------------------------------------------------------------------

    def set_enabled(self, ref: str, enabled: bool, *, actor: str) -> Enrollment:
        return self._update(
            ref, actor=actor, change="enabled" if enabled else "disabled", enabled=bool(enabled)
        )

    def set_expiry(self, ref: str, expires_at: datetime | None, *, actor: str) -> Enrollment:
        if expires_at is not None and expires_at.tzinfo is None:
            raise InvalidEnrollment("expires_at needs a timezone")
        return self._update(ref, actor=actor, change="expiry", expires_at=expires_at)

    def set_allocation(self, ref: str, allocation: Allocation, *, actor: str) -> Enrollment:
        check_allocation(allocation)
        return self._update(
            ref,
            actor=actor,
            change="allocation",
            allocation=allocation.policy.value,
            static_name=allocation.static_name,
            pool_pattern=allocation.pool_pattern,
            reprovision=allocation.reprovision.value,
        )

    def set_replaces(self, ref: str, replaces: str | None, *, actor: str) -> Enrollment:
        target = parse_logical_name(replaces) if replaces is not None else None
        return self._update(ref, actor=actor, change="replaces", replaces=target)

    # ---- read -----------------------------------------------------------------------------

    def get(self, ref: str) -> Enrollment:
        with self._db.read() as session:
            return _rows.to_enrollment(_rows.enrollment_row(session, ref))

    def list_all(self, *, limit: int = 100, offset: int = 0) -> list[Enrollment]:
        if not 1 <= limit <= 1000 or offset < 0:
            raise InvalidEnrollment("limit is 1-1000 and offset is >= 0")
        stmt = select(EnrollmentRow).order_by(EnrollmentRow.created_at, EnrollmentRow.id)
        with self._db.read() as session:
            rows = session.execute(stmt.limit(limit).offset(offset)).scalars()
            return [_rows.to_enrollment(row) for row in rows]

    def candidates(
        self, session: Session, physical_id: PhysicalId, method: AttestationKind
    ) -> list[Enrollment]:
        """The unit's individual enrollment of `method` first, then the method's groups."""
        found = [
            _rows.to_enrollment(row) for row in _rows.candidate_rows(session, physical_id, method)
        ]
        found.sort(key=lambda e: e.kind is not EnrollmentKind.INDIVIDUAL)
        return found

    def open_key(self, enrollment: Enrollment) -> bytearray:
        """The clear group or device key of a symmetric-key enrollment; the caller zeroes it."""
        if enrollment.sealed_key is None:
            raise InvalidEnrollment("this enrollment holds no key")
        return self._sealer.open(enrollment.sealed_key, aad=key_aad(enrollment.enrollment_id))

    def derive_device_key(self, group_ref: str, physical_id: str) -> bytearray:
        """The factory's flashing step: HMAC-SHA256(group_key, physical_id) for one unit of a
        symmetric-key group. The caller shows it once and zeroes it."""
        pid = parse_physical_id(physical_id)
        group = self.get(group_ref)
        if group.kind is not EnrollmentKind.GROUP or group.attestation is not (
            AttestationKind.SYMMETRIC_KEY
        ):
            raise InvalidEnrollment("derive-key needs a symmetric-key group enrollment")
        group_key = self.open_key(group)
        try:
            return derive_key(group_key, pid)
        finally:
            zero(group_key)

    # ---- steps ----------------------------------------------------------------------------

    def _new_row(
        self,
        kind: EnrollmentKind,
        attestation: AttestationKind,
        allocation: Allocation,
        *,
        name: str,
        actor: str,
        physical_id: str | None = None,
        key_fingerprint: str | None = None,
        ca_id: str | None = None,
        tpm_ek_public: bytes | None = None,
        tpm_ek_certificate: bytes | None = None,
        expires_at: datetime | None = None,
        replaces: str | None = None,
        require_hardware_key: bool = False,
    ) -> EnrollmentRow:
        check_allocation(allocation)
        if expires_at is not None and expires_at.tzinfo is None:
            raise InvalidEnrollment("expires_at needs a timezone")
        if replaces is not None and kind is not EnrollmentKind.INDIVIDUAL:
            raise InvalidEnrollment("only an individual enrollment may pre-authorise a replacement")
        if require_hardware_key and attestation is AttestationKind.SYMMETRIC_KEY:
            raise InvalidEnrollment("a symmetric key attests no hardware key to require")
        if kind is EnrollmentKind.GROUP and attestation is AttestationKind.X509 and not ca_id:
            raise InvalidEnrollment("an x509 group names the CA its birth certificates chain to")
        now = self._clock.now()
        return EnrollmentRow(
            id=str(uuid.uuid4()),
            name=_name(name),
            kind=kind.value,
            attestation=attestation.value,
            physical_id=physical_id,
            key_fingerprint=key_fingerprint,
            ca_id=ca_id,
            sealed_key=None,
            tpm_ek_public=tpm_ek_public,
            tpm_ek_certificate=tpm_ek_certificate,
            allocation=allocation.policy.value,
            static_name=allocation.static_name,
            pool_pattern=allocation.pool_pattern,
            reprovision=allocation.reprovision.value,
            replaces=parse_logical_name(replaces) if replaces is not None else None,
            require_hardware_key=require_hardware_key,
            enabled=True,
            expires_at=expires_at,
            created_at=now,
            created_by=actor,
            updated_at=now,
        )

    def _insert_with_key(
        self, row: EnrollmentRow, given: bytes | bytearray | None, *, actor: str
    ) -> KeyShown:
        key = bytearray(given) if given is not None else bytearray(secrets.token_bytes(KEY_SIZE))
        try:
            row.sealed_key = self._sealer.seal(key, aad=key_aad(row.id))
            enrollment = self._insert(row, actor=actor)
        except BaseException:
            zero(key)
            raise
        return KeyShown(enrollment=enrollment, key=key)

    def _insert(self, row: EnrollmentRow, *, actor: str) -> Enrollment:
        with self._db.transaction() as session:
            self._check_references(session, row)
            session.add(row)
            enrollment = _rows.to_enrollment(row)
            record(
                session,
                at=row.created_at,
                actor=actor,
                event_type=EventType.ENROLLMENT_CREATED,
                subject=row.name,
                payload=enrollment.to_json(),
            )
        return enrollment

    @staticmethod
    def _check_references(session: Session, row: EnrollmentRow) -> None:
        clash = EnrollmentRow.name == row.name
        if row.physical_id is not None:
            # A unit has one individual enrollment per method; groups (no unit) are told
            # apart by name only (`physical_id == None` would compile to IS NULL).
            clash = clash | (
                (EnrollmentRow.physical_id == row.physical_id)
                & (EnrollmentRow.attestation == row.attestation)
            )
        taken = session.execute(select(EnrollmentRow.id).where(clash)).first()
        if taken is not None:
            raise EnrollmentExists(
                "an enrollment with that name, or for that unit and method, exists",
                name=row.name,
            )
        if (
            row.physical_id is not None
            and session.get(PhysicalIdentityRow, row.physical_id) is None
        ):
            raise UnknownDevice(
                f"no physical identity {row.physical_id}", physical_id=row.physical_id
            )
        if row.ca_id is not None:
            ca = session.get(CertificateAuthorityRow, row.ca_id)
            # Only birth certificates attest a unit: an issuing CA's operational certificates
            # must never admit a device to provisioning.
            if ca is None or ca.role != "manufacturing":
                raise InvalidEnrollment(
                    f"no manufacturing CA {row.ca_id[:40]!r}", ca_id=row.ca_id[:40]
                )

    def _update(self, ref: str, *, actor: str, change: str, **values: object) -> Enrollment:
        now = self._clock.now()
        with self._db.transaction() as session:
            row = _rows.enrollment_row(session, ref, lock=True)
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = now
            enrollment = _rows.to_enrollment(row)
            record(
                session,
                at=now,
                actor=actor,
                event_type=EventType.ENROLLMENT_UPDATED,
                subject=row.name,
                payload={**enrollment.to_json(), "change": change},
            )
        return dc_replace(enrollment)

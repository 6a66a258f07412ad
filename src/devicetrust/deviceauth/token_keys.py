"""Per-unit HMAC token keys, in versions, so a key rotates without downtime.

    rotate(pid, overlap)   a new version (drawn from the CSPRNG, or given) becomes current;
                           every version accepted so far retires at now + overlap (both are
                           accepted in between, only the new one after)
    adopt_enrollment_key   a version holding the unit's symmetric-key enrollment key: its own
                           key (individual) or HMAC-SHA256(group_key, physical_id) (group)
    revoke(pid, version)   refused from now on, whatever the overlap
    purge()                erases the sealed key of every retired or revoked version

Keys are stored only sealed by the vault (aad names unit and version, so a sealed key moved
to another row does not open) and handled in `bytearray`s zeroed after use. Every change is
one transaction with its audit entry and `device_credential.*` event.

Never stores, logs, audits or returns a key in clear, except the `TokenKeyShown` of a key it
drew (once, for the operator to flash) and the key `open_key` hands the authenticator.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from devicetrust.deviceauth import session_keys
from devicetrust.deviceauth.errors import DeviceKeyNotFound, InvalidDeviceKey, InvalidLimits
from devicetrust.deviceauth.records import TokenKeyOrigin, TokenKeyShown, TokenKeyVersion
from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import Conflict
from devicetrust.domain.events import EventType
from devicetrust.domain.ids import PhysicalId, parse_physical_id
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.provisioning.enrollments import Enrollments, derive_key, zero
from devicetrust.provisioning.records import AttestationKind, Enrollment, EnrollmentKind
from devicetrust.store.database import Database
from devicetrust.store.journal import record
from devicetrust.store.models import EnrollmentRow, RegistrationRow
from devicetrust.store.models_device_auth import DeviceTokenKeyRow
from devicetrust.store.registry import physical_row
from devicetrust.vault import Sealer

KEY_SIZE = 32
MAX_KEY_SIZE = 64
DEFAULT_OVERLAP = timedelta(days=1)
MAX_OVERLAP = timedelta(days=30)


def key_aad(physical_id: str, version: int) -> bytes:
    return f"devicetrust/deviceauth/token-key/{physical_id}/{version}".encode()


def to_version(row: DeviceTokenKeyRow) -> TokenKeyVersion:
    return TokenKeyVersion(
        physical_id=PhysicalId(row.physical_id),
        version=row.version,
        origin=TokenKeyOrigin(row.origin),
        created_at=row.created_at,
        retires_at=row.retires_at,
        revoked_at=row.revoked_at,
        destroyed=row.sealed_key is None,
    )


class TokenKeys:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        sealer: Sealer,
        *,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._sealer = sealer
        self._on_change = on_change  # e.g. the authenticators' caches, cleared on a change

    # ---- change ---------------------------------------------------------------------------

    def rotate(
        self,
        physical_id: str,
        *,
        actor: str,
        key: bytes | bytearray | None = None,
        overlap: timedelta = DEFAULT_OVERLAP,
    ) -> TokenKeyShown:
        """A new current version: `key` (32-64 bytes) or 32 CSPRNG bytes, returned once."""
        if key is not None and not KEY_SIZE <= len(key) <= MAX_KEY_SIZE:
            raise InvalidDeviceKey(f"a token key has {KEY_SIZE}-{MAX_KEY_SIZE} bytes")
        origin = TokenKeyOrigin.GIVEN if key is not None else TokenKeyOrigin.GENERATED
        clear = bytearray(key) if key is not None else bytearray(secrets.token_bytes(KEY_SIZE))
        try:
            version = self._add_version(physical_id, clear, origin, overlap, actor=actor)
        except BaseException:
            zero(clear)
            raise
        return TokenKeyShown(version=version, key=clear)

    def adopt_enrollment_key(
        self,
        physical_id: str,
        *,
        actor: str,
        enrollment: str | None = None,
        overlap: timedelta = DEFAULT_OVERLAP,
    ) -> TokenKeyVersion:
        """A new current version holding the key the unit already has from its symmetric-key
        enrollment: `enrollment` (id or name), else the one it provisioned through, else its
        individual symmetric-key enrollment."""
        pid = parse_physical_id(physical_id)
        enrollments = Enrollments(self._db, self._clock, self._sealer)
        found = enrollments.get(enrollment) if enrollment else self._enrollment_of(pid)
        if found.attestation is not AttestationKind.SYMMETRIC_KEY:
            raise InvalidDeviceKey("only a symmetric-key enrollment holds a key to adopt")
        if found.kind is EnrollmentKind.INDIVIDUAL and found.physical_id != pid:
            raise InvalidDeviceKey("that individual enrollment is for another unit")
        opened = enrollments.open_key(found)
        try:
            grouped = found.kind is EnrollmentKind.GROUP
            clear = derive_key(opened, pid) if grouped else bytearray(opened)
        finally:
            zero(opened)
        try:
            return self._add_version(
                pid,
                clear,
                TokenKeyOrigin.ENROLLMENT,
                overlap,
                actor=actor,
                extra={"enrollment": found.name},
            )
        finally:
            zero(clear)

    def revoke(self, physical_id: str, version: int, *, actor: str) -> TokenKeyVersion:
        """Refuse the version from now on (e.g. a leaked key); its sealed key is erased."""
        pid = parse_physical_id(physical_id)
        now = self._clock.now()
        with self._db.transaction() as session:
            row = session.execute(
                select(DeviceTokenKeyRow)
                .where(DeviceTokenKeyRow.physical_id == pid, DeviceTokenKeyRow.version == version)
                .with_for_update()
            ).scalar_one_or_none()
            if row is None:
                raise DeviceKeyNotFound(
                    f"unit {pid} has no token key version {version}", physical_id=pid
                )
            if row.revoked_at is None:
                row.revoked_at, row.revoked_by, row.sealed_key = now, actor, None
                record(
                    session,
                    at=now,
                    actor=actor,
                    event_type=EventType.DEVICE_CREDENTIAL_REVOKED,
                    subject=pid,
                    payload={"physical_id": pid, "kind": "token-key", "version": version},
                )
            revoked = to_version(row)
        self._changed()
        return revoked

    def purge(self) -> int:
        """Periodic upkeep: erase the sealed key of every version past its retirement."""
        now = self._clock.now()
        with self._db.transaction() as session:
            erased = session.execute(
                update(DeviceTokenKeyRow)
                .where(
                    DeviceTokenKeyRow.sealed_key.is_not(None),
                    DeviceTokenKeyRow.retires_at <= now,
                )
                .values(sealed_key=None)
            ).rowcount  # type: ignore[attr-defined]
        if erased:
            self._changed()
        return int(erased)

    # ---- read -----------------------------------------------------------------------------

    def list_versions(self, physical_id: str) -> list[TokenKeyVersion]:
        pid = parse_physical_id(physical_id)
        with self._db.read() as session:
            rows = session.execute(
                select(DeviceTokenKeyRow)
                .where(DeviceTokenKeyRow.physical_id == pid)
                .order_by(DeviceTokenKeyRow.version)
            ).scalars()
            return [to_version(row) for row in rows]

    def open_key(self, physical_id: str, version: int, sealed_key: bytes | None) -> bytearray:
        """The clear key of a version (the authenticator's step); the caller zeroes it."""
        if sealed_key is None:
            raise DeviceKeyNotFound("that token key version was erased", version=version)
        return self._sealer.open(sealed_key, aad=key_aad(physical_id, version))

    def open_session(
        self, physical_id: str, *, session_id: str, salt: bytes, version: int | None = None
    ) -> session_keys.SessionKeyRatchet:
        """The server's side of a session keyed from the unit's token key (`version`, or the
        newest accepted one): epoch 0 of a ratchet both sides derive alike."""
        pid = parse_physical_id(physical_id)
        now = self._clock.now()
        with self._db.read() as session:
            stmt = select(DeviceTokenKeyRow).where(DeviceTokenKeyRow.physical_id == pid)
            if version is not None:
                stmt = stmt.where(DeviceTokenKeyRow.version == version)
            rows = session.execute(stmt.order_by(DeviceTokenKeyRow.version.desc())).scalars()
            usable = [r for r in rows if to_version(r).accepted_at(now)]
        if not usable:
            raise DeviceKeyNotFound(f"unit {pid} has no accepted token key", physical_id=pid)
        primary = self.open_key(pid, usable[0].version, usable[0].sealed_key)
        try:
            return session_keys.SessionKeyRatchet(
                primary, salt=salt, identity=pid, session_id=session_id
            )
        finally:
            zero(primary)

    # ---- steps ----------------------------------------------------------------------------

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def _enrollment_of(self, pid: PhysicalId) -> Enrollment:
        enrollments = Enrollments(self._db, self._clock, self._sealer)
        with self._db.read() as session:
            registered = session.get(RegistrationRow, pid)
            ref = registered.enrollment_id if registered is not None else None
            if ref is not None:
                row = session.get(EnrollmentRow, ref)
                if row is None or row.attestation != AttestationKind.SYMMETRIC_KEY.value:
                    ref = None
            if ref is None:
                ref = session.execute(
                    select(EnrollmentRow.id).where(
                        EnrollmentRow.physical_id == pid,
                        EnrollmentRow.attestation == AttestationKind.SYMMETRIC_KEY.value,
                    )
                ).scalar_one_or_none()
        if ref is None:
            raise DeviceKeyNotFound(
                f"unit {pid} has no symmetric-key enrollment to adopt a key from",
                physical_id=pid,
            )
        return enrollments.get(ref)

    def _add_version(
        self,
        physical_id: str,
        clear: bytearray,
        origin: TokenKeyOrigin,
        overlap: timedelta,
        *,
        actor: str,
        extra: dict[str, Any] | None = None,
    ) -> TokenKeyVersion:
        if not timedelta(0) <= overlap <= MAX_OVERLAP:
            raise InvalidLimits(f"a rotation overlap is 0 to {MAX_OVERLAP}")
        pid = parse_physical_id(physical_id)
        now = self._clock.now()
        with self._db.transaction() as session:
            unit = physical_row(session, pid, lock=True)  # serialises rotations of one unit
            if unit.state == DeviceState.DECOMMISSIONED.value:
                raise Conflict(
                    "deviceauth.unit_not_live", f"unit {pid} is decommissioned", physical_id=pid
                )
            version = 1 + (
                session.execute(
                    select(func.max(DeviceTokenKeyRow.version)).where(
                        DeviceTokenKeyRow.physical_id == pid
                    )
                ).scalar_one_or_none()
                or 0
            )
            retiring = self._retire_current(session, pid, now + overlap)
            row = DeviceTokenKeyRow(
                physical_id=pid,
                version=version,
                origin=origin.value,
                sealed_key=self._sealer.seal(clear, aad=key_aad(pid, version)),
                created_at=now,
                created_by=actor,
                retires_at=None,
                revoked_at=None,
                revoked_by=None,
            )
            session.add(row)
            added = to_version(row)
            record(
                session,
                at=now,
                actor=actor,
                event_type=EventType.DEVICE_CREDENTIAL_ADDED,
                subject=pid,
                payload={
                    "physical_id": pid,
                    "kind": "token-key",
                    "version": version,
                    "origin": origin.value,
                    "retiring": retiring,
                    **(extra or {}),
                },
            )
        self._changed()
        return added

    @staticmethod
    def _retire_current(session: Session, pid: str, retires_at: datetime) -> list[dict[str, Any]]:
        """Every version still accepted retires at `retires_at` (never later than it would)."""
        rows = session.execute(
            select(DeviceTokenKeyRow).where(
                DeviceTokenKeyRow.physical_id == pid,
                DeviceTokenKeyRow.revoked_at.is_(None),
                DeviceTokenKeyRow.sealed_key.is_not(None),
            )
        ).scalars()
        retiring = []
        for row in rows:
            if row.retires_at is not None and row.retires_at <= retires_at:
                continue  # already retiring sooner (or retired): a rotation never extends it
            row.retires_at = retires_at
            retiring.append({"version": row.version, "retires_at": retires_at.isoformat()})
        return retiring

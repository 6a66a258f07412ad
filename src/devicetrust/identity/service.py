"""The identity registry: physical units, logical identities, and their lifecycle.

Every operation is one transaction that makes the change, appends its audit entry and writes
its outbox event; it either happens whole or not at all. Bad input raises a
`DeviceTrustError` before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from devicetrust.domain.attributes import clean_reason, merge_attributes, validate_attributes
from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import Conflict, InvalidInput
from devicetrust.domain.events import EventType
from devicetrust.domain.ids import (
    LogicalName,
    PhysicalId,
    new_physical_id,
    parse_logical_name,
    parse_physical_id,
)
from devicetrust.domain.lifecycle import DeviceState, release_target
from devicetrust.domain.records import LogicalIdentity, PhysicalIdentity
from devicetrust.identity import _rows
from devicetrust.identity.bindings import BindingOps
from devicetrust.identity.history import HistoryQueries
from devicetrust.store.database import Database
from devicetrust.store.journal import record
from devicetrust.store.models import LogicalIdentityRow, PhysicalIdentityRow, RetiredNameRow
from devicetrust.store.registry import physical_row

MAX_SERIALS = 64


@dataclass(frozen=True, slots=True)
class UnitSpec:
    """What the factory knows about a unit at registration (nothing secret)."""

    model: str
    hardware_serials: Mapping[str, str]
    manufactured_at: datetime | None = None
    # Only for units a factory already named (a signed manufacturing manifest): its UUID is
    # kept. Everything else gets a fresh CSPRNG UUIDv4 here.
    physical_id: PhysicalId | None = None


def _validate_unit(spec: UnitSpec) -> dict[str, str]:
    if not isinstance(spec.model, str) or not 1 <= len(spec.model) <= 128:
        raise InvalidInput("identity.invalid_model", "model is a 1-128 character string")
    serials = spec.hardware_serials
    if not isinstance(serials, Mapping) or len(serials) > MAX_SERIALS:
        raise InvalidInput(
            "identity.invalid_serials",
            f"hardware_serials maps component names to serial numbers (at most {MAX_SERIALS})",
        )
    clean: dict[str, str] = {}
    for component, serial in serials.items():
        ok = isinstance(component, str) and isinstance(serial, str)
        if not ok or not 0 < len(component) <= 64 or not 0 < len(serial) <= 128:
            raise InvalidInput(
                "identity.invalid_serials",
                "each hardware serial is a component name (1-64) and a serial (1-128 chars)",
            )
        clean[component] = serial
    if spec.manufactured_at is not None and spec.manufactured_at.tzinfo is None:
        raise InvalidInput("identity.invalid_time", "manufactured_at needs a timezone")
    if spec.physical_id is not None:
        parse_physical_id(spec.physical_id)
    return clean


class IdentityService(BindingOps, HistoryQueries):
    def __init__(
        self, db: Database, clock: Clock, *, name_grace: timedelta = timedelta(days=30)
    ) -> None:
        self._db = db
        self._clock = clock
        self._name_grace = name_grace

    # ---- physical identities -------------------------------------------------------------

    def register(self, spec: UnitSpec, *, actor: str) -> PhysicalIdentity:
        """Create a physical identity at manufacturing: a fresh CSPRNG UUIDv4."""
        return self.register_batch([spec], actor=actor)[0]

    def register_batch(self, specs: Sequence[UnitSpec], *, actor: str) -> list[PhysicalIdentity]:
        """Register a manufacturing batch in one transaction (all or none)."""
        cleaned = [(spec, _validate_unit(spec)) for spec in specs]
        now = self._clock.now()
        out: list[PhysicalIdentity] = []
        with self._db.transaction() as session:
            for spec, serials in cleaned:
                known = spec.physical_id and session.get(PhysicalIdentityRow, spec.physical_id)
                if known is not None:
                    raise Conflict(
                        "identity.already_registered",
                        f"unit {spec.physical_id} is already registered",
                        physical_id=spec.physical_id,
                    )
                row = PhysicalIdentityRow(
                    id=spec.physical_id or new_physical_id(),
                    model=spec.model,
                    hardware_serials=serials,
                    key_fingerprints=[],
                    manufactured_at=spec.manufactured_at or now,
                    state=DeviceState.MANUFACTURED.value,
                    quarantined_from=None,
                    created_by=actor,
                    updated_at=now,
                )
                session.add(row)
                record(
                    session,
                    at=now,
                    actor=actor,
                    event_type=EventType.IDENTITY_CREATED,
                    subject=row.id,
                    payload={"physical_id": row.id, "model": row.model, "serials": serials},
                )
                out.append(
                    PhysicalIdentity(
                        physical_id=PhysicalId(row.id),
                        model=row.model,
                        state=DeviceState.MANUFACTURED,
                        manufactured_at=row.manufactured_at,
                        hardware_serials=serials,
                    )
                )
        return out

    def get_physical(self, physical_id: str) -> PhysicalIdentity:
        with self._db.read() as session:
            return _rows.to_physical(session, physical_row(session, physical_id))

    def list_physical(
        self, *, state: DeviceState | None = None, limit: int = 100, offset: int = 0
    ) -> list[PhysicalIdentity]:
        _check_page(limit, offset)
        stmt = select(PhysicalIdentityRow).order_by(
            PhysicalIdentityRow.manufactured_at, PhysicalIdentityRow.id
        )
        if state is not None:
            stmt = stmt.where(PhysicalIdentityRow.state == state.value)
        with self._db.read() as session:
            rows = session.execute(stmt.limit(limit).offset(offset)).scalars().all()
            return [_rows.to_physical(session, row) for row in rows]

    def set_state(
        self,
        physical_id: str,
        target: DeviceState,
        *,
        actor: str,
        reason: str = "",
        release: bool = False,
    ) -> PhysicalIdentity:
        """Move a unit along its lifecycle; `release=True` is the operator's quarantine release
        (the target is then chosen by the lifecycle rules)."""
        reason = clean_reason(reason)
        now = self._clock.now()
        with self._db.transaction() as session:
            row = physical_row(session, physical_id, lock=True)
            current = DeviceState(row.state)
            if release:
                if current is not DeviceState.QUARANTINED:
                    raise Conflict(
                        "lifecycle.not_quarantined", f"unit is {current.value}, not quarantined"
                    )
                quarantined_from = (
                    DeviceState(row.quarantined_from) if row.quarantined_from else None
                )
                target = release_target(quarantined_from)
            self._change_state(
                session, row, target, now=now, actor=actor, reason=reason, releasing=release
            )
            return _rows.to_physical(session, row)

    def add_key_fingerprint(
        self, physical_id: str, fingerprint: str, *, actor: str
    ) -> PhysicalIdentity:
        """Record the SHA-256 fingerprint (`sha256:<hex>`) of a public key the unit holds."""
        fp = parse_key_fingerprint(fingerprint)
        now = self._clock.now()
        with self._db.transaction() as session:
            row = physical_row(session, physical_id, lock=True)
            if fp not in row.key_fingerprints:
                row.key_fingerprints = [*row.key_fingerprints, fp]
                row.updated_at = now
                record(
                    session,
                    at=now,
                    actor=actor,
                    event_type=EventType.DEVICE_KEY_REGISTERED,
                    subject=row.id,
                    payload={"physical_id": row.id, "fingerprint": fp},
                )
            return _rows.to_physical(session, row)

    # ---- logical identities --------------------------------------------------------------

    def create_logical(
        self, name: str, attributes: Mapping[str, Any] | None = None, *, actor: str
    ) -> LogicalIdentity:
        lname = parse_logical_name(name)
        attrs = validate_attributes(attributes or {})
        now = self._clock.now()
        with self._db.transaction() as session:
            self._ensure_name_free(session, lname, now)
            row = _rows.add_logical(session, lname, attrs, now=now, actor=actor)
            session.flush()
            return _rows.to_logical(session, row)

    def get_logical(self, name: str) -> LogicalIdentity:
        with self._db.read() as session:
            return _rows.to_logical(session, _rows.logical_row(session, name, self._clock.now()))

    def list_logical(self, *, limit: int = 100, offset: int = 0) -> list[LogicalIdentity]:
        _check_page(limit, offset)
        stmt = select(LogicalIdentityRow).order_by(LogicalIdentityRow.name)
        with self._db.read() as session:
            rows = session.execute(stmt.limit(limit).offset(offset)).scalars().all()
            return [_rows.to_logical(session, row) for row in rows]

    def update_attributes(
        self, name: str, update: Mapping[str, Any], *, actor: str
    ) -> LogicalIdentity:
        now = self._clock.now()
        with self._db.transaction() as session:
            row = _rows.logical_row(session, name, now, lock=True)
            row.attributes = merge_attributes(row.attributes, update)
            row.updated_at = now
            record(
                session,
                at=now,
                actor=actor,
                event_type=EventType.LOGICAL_UPDATED,
                subject=row.name,
                payload={"logical_id": row.id, "name": row.name, "attributes": row.attributes},
            )
            return _rows.to_logical(session, row)

    def rename(self, name: str, new_name: str, *, actor: str) -> LogicalIdentity:
        """Give a logical identity a new name; the old one stays resolvable for the grace
        period and is kept in history for ever."""
        target = parse_logical_name(new_name)
        now = self._clock.now()
        with self._db.transaction() as session:
            row = _rows.logical_row(session, name, now, lock=True)
            old = LogicalName(row.name)
            if old == target:
                raise Conflict("identity.same_name", f"{old!r} already has that name")
            self._ensure_name_free(session, target, now, allow_logical_id=row.id)
            session.add(
                RetiredNameRow(
                    name=old,
                    logical_id=row.id,
                    retired_at=now,
                    resolvable_until=now + self._name_grace,
                )
            )
            row.name = target
            row.updated_at = now
            _rows.count_release(session)  # the old name is free once its grace ends
            binding = _rows.open_binding_of_logical(session, row.id)
            record(
                session,
                at=now,
                actor=actor,
                event_type=EventType.DEVICE_RENAMED,
                subject=target,
                payload={
                    "logical_id": row.id,
                    "old_name": old,
                    "new_name": target,
                    "physical_id": binding.physical_id if binding else None,
                    "old_name_resolvable_until": (now + self._name_grace).isoformat(),
                },
            )
            return _rows.to_logical(session, row)

    def _ensure_name_free(
        self, session: Session, name: LogicalName, now: datetime, allow_logical_id: str = ""
    ) -> None:
        holder = session.execute(
            select(LogicalIdentityRow.id).where(LogicalIdentityRow.name == name)
        ).scalar_one_or_none()
        if holder is not None:
            raise Conflict("identity.name_taken", f"logical name {name!r} is taken", name=name)
        _rows.check_not_in_grace(session, name, now, allow_logical_id)


def parse_key_fingerprint(value: str) -> str:
    text = value.strip().lower()
    digest = text.removeprefix("sha256:")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise InvalidInput(
            "identity.invalid_fingerprint", "a key fingerprint is sha256:<64 hex digits>"
        )
    return f"sha256:{digest}"


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= 1000 or offset < 0:
        raise InvalidInput("request.invalid_page", "limit is 1-1000 and offset is >= 0")

"""`AttestationService`: golden measurements and the record of verified boot attestations.

    add_golden(name, pcrs, note=, actor=)        known-good PCR values, by name
    golden_from_unit(name, physical_id, actor=)  the values a reference unit last proved
    revoke_golden(name, reason=, actor=)         no longer accepted (kept for old verdicts)
    goldens(include_revoked=)                    list them
    quote_selection()                            the PCRs a device is asked to quote
    record(physical_id, pcrs, source=, ak_public=)   judge a verified quote's PCRs, keep it
    bound_key(physical_id)                       the AK its provisioning bound to its EK
    latest(physical_id) / history(physical_id)   what a unit proved, newest first

Never verifies a quote itself: the caller (provisioning's TPM method) has checked the quote's
signature by an attestation key bound to the unit's EK and its freshness, and passes the PCR
values it proved. Every change is one transaction with its audit entry and outbox event.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from devicetrust.attestation import rules
from devicetrust.attestation.model import BootAttestation, GoldenMeasurement
from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import Conflict, InvalidInput, NotFound
from devicetrust.domain.events import EventType
from devicetrust.domain.ids import parse_physical_id
from devicetrust.store.database import Database
from devicetrust.store.journal import record
from devicetrust.store.models_attestation import BootAttestationRow, GoldenMeasurementRow
from devicetrust.store.registry import physical_row

MAX_REASON = 500
MAX_HISTORY = 1000


class AttestationService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def add_golden(
        self, name: str, pcrs: Mapping[Any, Any], *, note: str = "", actor: str
    ) -> GoldenMeasurement:
        """`pcrs` as `{"0": "<hex>", ...}` or already `{0: bytes}`; a name is never reused."""
        checked = rules.check_name(name)
        values = _as_pcrs(pcrs)
        now = self._clock.now()
        with self._db.transaction() as session:
            if session.get(GoldenMeasurementRow, checked) is not None:
                raise Conflict("attestation.golden_exists", f"golden measurement {checked} exists")
            row = GoldenMeasurementRow(
                name=checked,
                pcrs=rules.pcrs_json(values),
                note=str(note)[:MAX_REASON],
                created_at=now,
                created_by=actor,
            )
            session.add(row)
            return _journaled(session, row, EventType.GOLDEN_MEASUREMENT_ADDED, actor, now)

    def golden_from_unit(
        self, name: str, physical_id: str, *, note: str = "", actor: str
    ) -> GoldenMeasurement:
        """A golden measurement of the PCR values `physical_id` proved in its latest quote
        (a reference unit booted on known-good firmware)."""
        latest = self.latest(physical_id)
        if latest is None:
            raise NotFound(
                "attestation.no_attestation", f"unit {physical_id} has never attested its boot"
            )
        text = note or f"from unit {latest.physical_id}, quote of {latest.attested_at:%Y-%m-%d}"
        return self.add_golden(name, latest.pcrs, note=text, actor=actor)

    def revoke_golden(self, name: str, *, reason: str, actor: str) -> GoldenMeasurement:
        text = str(reason).strip()
        if not text or len(text) > MAX_REASON:
            raise InvalidInput("attestation.reason_required", "say why (1-500 characters)")
        now = self._clock.now()
        with self._db.transaction() as session:
            row = session.get(GoldenMeasurementRow, str(name), with_for_update=True)
            if row is None:
                raise NotFound("attestation.golden_not_found", f"no golden measurement {name}")
            if row.revoked_at is not None:
                raise Conflict("attestation.golden_revoked", f"{name} is already revoked")
            row.revoked_at, row.revoked_by, row.revoke_reason = now, actor, text
            return _journaled(session, row, EventType.GOLDEN_MEASUREMENT_REVOKED, actor, now)

    def goldens(self, *, include_revoked: bool = False) -> list[GoldenMeasurement]:
        query = select(GoldenMeasurementRow).order_by(GoldenMeasurementRow.name)
        if not include_revoked:
            query = query.where(GoldenMeasurementRow.revoked_at.is_(None))
        with self._db.read() as session:
            return [_golden(row) for row in session.scalars(query)]

    def quote_selection(self) -> tuple[int, ...]:
        return rules.quote_selection(g.pcrs for g in self.goldens())

    def record(
        self,
        physical_id: str,
        pcrs: Mapping[int, bytes],
        *,
        source: str,
        ak_public: bytes | None = None,
    ) -> BootAttestation:
        """Judge the PCR values a verified quote proved against the active golden
        measurements, and keep the result (audited as `device.boot_attested`). `ak_public`:
        the attestation key that signed the quote, once bound to the unit's EK."""
        values = _as_pcrs(pcrs)
        now = self._clock.now()
        with self._db.transaction() as session:
            pid = physical_row(session, parse_physical_id(physical_id)).id
            goldens = {
                row.name: rules.parse_pcrs(row.pcrs)
                for row in session.scalars(
                    select(GoldenMeasurementRow).where(GoldenMeasurementRow.revoked_at.is_(None))
                )
            }
            judgement = rules.judge(values, goldens)
            row = BootAttestationRow(
                id=str(uuid.uuid4()),
                physical_id=pid,
                attested_at=now,
                pcrs=rules.pcrs_json(values),
                golden=judgement.golden,
                verdict=judgement.verdict.value,
                detail=judgement.detail,
                ak_public=ak_public,
            )
            session.add(row)
            attestation = _attestation(row)
            record(
                session,
                at=now,
                actor=f"device:{pid}",
                event_type=EventType.BOOT_ATTESTED,
                subject=pid,
                payload={**attestation.to_json(), "source": source},
            )
        return attestation

    def bound_key(self, physical_id: str) -> bytes | None:
        """The attestation key (TPM2B_PUBLIC) of the unit's newest quote that named one: the
        AK its TPM proved bound to its EK when it was provisioned."""
        t = BootAttestationRow
        with self._db.read() as session:
            pid = physical_row(session, parse_physical_id(physical_id)).id
            return session.scalars(
                select(t.ak_public)
                .where(t.physical_id == pid, t.ak_public.is_not(None))
                .order_by(t.seq.desc())
                .limit(1)
            ).first()

    def latest(self, physical_id: str) -> BootAttestation | None:
        history = self.history(physical_id, limit=1)
        return history[0] if history else None

    def history(self, physical_id: str, *, limit: int = 50) -> list[BootAttestation]:
        if not 1 <= limit <= MAX_HISTORY:
            raise InvalidInput("request.invalid_page", f"limit is 1-{MAX_HISTORY}")
        t = BootAttestationRow
        with self._db.read() as session:
            pid = physical_row(session, parse_physical_id(physical_id)).id
            rows = session.scalars(
                select(t).where(t.physical_id == pid).order_by(t.seq.desc()).limit(limit)
            )
            return [_attestation(row) for row in rows]


def _as_pcrs(pcrs: Mapping[Any, Any]) -> dict[int, bytes]:
    if pcrs and all(isinstance(v, bytes | bytearray) for v in pcrs.values()):
        return rules.parse_pcrs({k: bytes(v).hex() for k, v in pcrs.items()})
    return rules.parse_pcrs(pcrs)


def _journaled(
    session: Session, row: GoldenMeasurementRow, event: EventType, actor: str, at: datetime
) -> GoldenMeasurement:
    """The golden measurement as `row` now holds it, its change audited and evented."""
    golden = _golden(row)
    record(
        session, at=at, actor=actor, event_type=event, subject=f"golden:{row.name}",
        payload=golden.to_json(),
    )  # fmt: skip
    return golden


def _golden(row: GoldenMeasurementRow) -> GoldenMeasurement:
    return GoldenMeasurement(
        name=row.name,
        pcrs=rules.parse_pcrs(row.pcrs),
        note=row.note,
        created_at=row.created_at,
        created_by=row.created_by,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        revoke_reason=row.revoke_reason,
    )


def _attestation(row: BootAttestationRow) -> BootAttestation:
    return BootAttestation(
        attestation_id=row.id,
        physical_id=row.physical_id,
        attested_at=row.attested_at,
        pcrs=rules.parse_pcrs(row.pcrs),
        verdict=rules.BootVerdict(row.verdict),
        golden=row.golden,
        detail=row.detail,
    )

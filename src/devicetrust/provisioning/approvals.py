"""Manual allocation: the pending queue, the operator's approval, a unit's registration.

POLLED is the audit action of a pending unit's later polls (its first one is evented).

A unit whose enrollment allocates manually is queued `pending` by its first attested
registration and keeps polling (`Retry-After`). An operator approves it with a logical name
(`provisioning.approved`, audited); its next attested registration binds that name and
issues its certificate.

Never binds or issues anything itself (the next attested registration does), and never
approves a name another unit holds.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import InvalidInput
from devicetrust.domain.events import EventType
from devicetrust.domain.ids import parse_logical_name, parse_physical_id
from devicetrust.provisioning import _facts, _rows
from devicetrust.provisioning.assignment import Plan, device_actor
from devicetrust.provisioning.errors import NameHeld, NotPending, RegistrationNotFound
from devicetrust.provisioning.methods import RegistrationRequest
from devicetrust.provisioning.records import Registration, RegistrationStatus
from devicetrust.store.database import Database
from devicetrust.store.journal import append_audit, record
from devicetrust.store.models import RegistrationRow

POLLED = "provisioning.polled"


class ApprovalOps:
    _db: Database
    _clock: Clock

    def registration(self, physical_id: str) -> Registration:
        pid = parse_physical_id(physical_id)
        with self._db.read() as session:
            row = session.get(RegistrationRow, pid)
            if row is None:
                raise RegistrationNotFound(f"unit {pid} has not registered", physical_id=pid)
            return _rows.to_registration(row)

    def list_pending(self, *, limit: int = 100, offset: int = 0) -> list[Registration]:
        if not 1 <= limit <= 1000 or offset < 0:
            raise InvalidInput("request.invalid_page", "limit is 1-1000 and offset is >= 0")
        stmt = (
            select(RegistrationRow)
            .where(RegistrationRow.status == RegistrationStatus.PENDING.value)
            .order_by(RegistrationRow.requested_at, RegistrationRow.physical_id)
        )
        with self._db.read() as session:
            rows = session.execute(stmt.limit(limit).offset(offset)).scalars()
            return [_rows.to_registration(row) for row in rows]

    def approve(self, physical_id: str, name: str, *, actor: str) -> Registration:
        """Assign `name` to a pending unit; its next registration applies it."""
        pid = parse_physical_id(physical_id)
        lname = parse_logical_name(name)
        now = self._clock.now()
        with self._db.transaction() as session:
            row = session.get(RegistrationRow, pid, with_for_update=True)
            if row is None:
                raise RegistrationNotFound(f"unit {pid} has not registered", physical_id=pid)
            if row.status != RegistrationStatus.PENDING.value:
                raise NotPending(f"unit {pid} is {row.status}, not pending", status=row.status)
            if _facts.held_by_others(session, pid, now, names=[lname]):
                raise NameHeld(f"logical identity {lname!r} is held by another unit", name=lname)
            row.status = RegistrationStatus.APPROVED.value
            row.logical_name = lname
            row.updated_at = now
            record(
                session,
                at=now,
                actor=actor,
                event_type=EventType.PROVISIONING_APPROVED,
                subject=pid,
                payload={"physical_id": pid, "logical_name": lname},
            )
            return _rows.to_registration(row)

    def _queue(
        self, session: Session, plan: Plan, request: RegistrationRequest, now: datetime
    ) -> None:
        pid = plan.physical_id
        payload = {
            "physical_id": pid,
            "enrollment": plan.enrollment.name,
            "method": request.method.value,
            "source": request.source[:64],
        }
        if plan.first_pending:
            session.add(
                RegistrationRow(
                    physical_id=pid,
                    enrollment_id=plan.enrollment.enrollment_id,
                    status=RegistrationStatus.PENDING.value,
                    logical_name=None,
                    serial=None,
                    requested_at=now,
                    updated_at=now,
                )
            )
            record(
                session,
                at=now,
                actor=device_actor(pid),
                event_type=EventType.PROVISIONING_PENDING,
                subject=pid,
                payload=payload,
            )
        else:
            append_audit(
                session,
                at=now,
                actor=device_actor(pid),
                action=POLLED,
                subject=pid,
                details=payload,
            )

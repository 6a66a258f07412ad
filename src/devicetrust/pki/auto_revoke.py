"""`AutoRevoker`: keeps certificates in step with the identity registry by consuming the outbox.

    device.state_changed -> suspended       hold the unit's certificates (certificateHold)
                         -> quarantined     revoke them (privilegeWithdrawn)
                         -> decommissioned  revoke them (cessationOfOperation)
                            (either, as part of a replacement: superseded)
                         suspended -> active  release the holds this consumer placed, then
                                              re-issue if the name changed meanwhile
    device.replaced      old unit: revoke (superseded); new unit: re-issue with the name
    device.renamed / transferred / bound / unbound
                         re-issue operational certificates that carry a stale name

Why holds for suspension: a suspension is meant to be undone, and RFC 5280 §5.3.1 gives
certificateHold for exactly that; on reactivation the hold is lifted (the entry leaves the
next full CRL) rather than re-issuing, so a device resumes without a new enrollment.
Quarantine suggests the unit may be compromised, so it gets a permanent revocation and the
unit enrolls a new key after its release. keyCompromise is never inferred.

Delivery is at-least-once and each event is handled in the same transaction as its
"consumed" mark (runs of up to `RUN` events share one), in outbox order, stopping at the
first failure (so a reactivation is never applied before the suspension it undoes). The
persisted cursor is a low-water mark that only passes events older than `settle`: outbox
ids can commit out of order, and an id skipped now is picked up on a later run. Never
revokes for an event it cannot attribute to a unit, and never releases a hold an operator
placed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from devicetrust.domain.errors import DeviceTrustError
from devicetrust.domain.events import EventType
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.store.models import OutboxRow
from devicetrust.store.outbox_cursor import OutboxCursor

if TYPE_CHECKING:
    from devicetrust.pki.service import PkiService

_log = logging.getLogger(__name__)

CONSUMER = "pki.auto_revoker"
AUTO_ACTOR = "system:pki-auto-revoker"
HANDLED = (
    EventType.DEVICE_STATE_CHANGED,
    EventType.DEVICE_REPLACED,
    EventType.DEVICE_RENAMED,
    EventType.DEVICE_TRANSFERRED,
    EventType.DEVICE_BOUND,
    EventType.DEVICE_UNBOUND,
)
_HANDLED_VALUES = [t.value for t in HANDLED]
_REPLACEMENT_WINDOW = 1000  # outbox ids: a replacement's events are written together
# Events handled per transaction: one commit and one cursor lock for many events (most need
# nothing: a provisioning's binding carries no stale name), while the locks a run takes
# stay short-lived.
RUN = 50
R = x509.ReasonFlags


@dataclass(frozen=True, slots=True)
class AutoRevokeReport:
    events: int = 0
    revoked: int = 0
    released: int = 0
    reissued: int = 0
    failed_event_id: int | None = None
    error: str | None = None


@dataclass
class _Tally:
    revoked: int = 0
    released: int = 0
    reissued: int = 0

    def add(self, other: _Tally) -> None:
        self.revoked += other.revoked
        self.released += other.released
        self.reissued += other.reissued


class _Failed(Exception):
    """Event `index` of a run (`event_id`) refused with `error`."""

    def __init__(self, index: int, event_id: int, error: DeviceTrustError) -> None:
        super().__init__(index, event_id, error)
        self.index, self.event_id, self.error = index, event_id, error


class AutoRevoker:
    def __init__(
        self,
        pki: PkiService,
        *,
        settle: timedelta = timedelta(minutes=10),
        batch: int = 500,
        lifetime_cap: Callable[[str], timedelta | None] | None = None,
    ) -> None:
        """`lifetime_cap(physical_id)`: the unit's security-policy cap on a re-issued
        certificate's lifetime (passed in by the composition root; pki knows no policy)."""
        self._pki = pki
        self._lifetime_cap = lifetime_cap
        self._db = pki.database
        self._clock = pki.clock
        self._cursor = OutboxCursor(
            self._db, self._clock, CONSUMER, _HANDLED_VALUES, settle=settle, batch=batch
        )

    def run_once(self) -> AutoRevokeReport:
        """Handle up to `batch` pending events; safe to run again at any time."""
        self._cursor.ensure()
        tally = _Tally()
        handled = 0
        pending = self._cursor.pending_ids()
        for start in range(0, len(pending), RUN):
            done, touched, failure = self._handle_run(pending[start : start + RUN], tally)
            handled += done
            self._pki._refresh_after_revocation(touched, AUTO_ACTOR)
            if failure is not None:
                event_id, code = failure.event_id, failure.error.code
                _log.warning("auto-revocation stopped at outbox event %s: %s", event_id, code)
                return self._report(handled, tally, event_id, code)
        self._cursor.advance()
        return self._report(handled, tally)

    @staticmethod
    def _report(
        handled: int, tally: _Tally, failed: int | None = None, error: str | None = None
    ) -> AutoRevokeReport:
        return AutoRevokeReport(
            handled, tally.revoked, tally.released, tally.reissued, failed, error
        )

    # ---- events --------------------------------------------------------------------------

    def _handle_run(
        self, event_ids: list[int], tally: _Tally
    ) -> tuple[int, list[str], _Failed | None]:
        """Events in one transaction, in order: (how many were handled, the CA ids whose
        CRLs they made stale, the first failure). When one fails, nothing of the run is
        kept: the events before it are handled again as a run of their own, so each
        event's changes still commit with its consumed mark, and none after a failure."""
        attempt = _Tally()
        try:
            touched = self._handle_events(event_ids, attempt)
        except _Failed as failed:
            if failed.index == 0:
                return 0, [], failed
            done, touched, earlier = self._handle_run(event_ids[: failed.index], tally)
            return done, touched, earlier or failed
        except DeviceTrustError as exc:  # at commit: the failing event is not known
            if len(event_ids) == 1:
                return 0, [], _Failed(0, event_ids[0], exc)
            done, touched = 0, []
            for event_id in event_ids:  # one at a time, to find it
                one, stale, failure = self._handle_run([event_id], tally)
                done, touched = done + one, touched + stale
                if failure is not None:
                    return done, touched, failure
            return done, touched, None
        tally.add(attempt)
        return len(event_ids), touched, None

    def _handle_events(self, event_ids: list[int], tally: _Tally) -> list[str]:
        now = self._clock.now()
        touched: list[str] = []
        with self._db.transaction() as session:
            self._cursor.row(session, lock=True)  # serialises consumers
            for index, event_id in enumerate(event_ids):
                try:
                    if self._cursor.is_consumed(session, event_id):
                        continue  # another consumer handled it meanwhile
                    event = session.get(OutboxRow, event_id)
                    if event is not None:
                        touched.extend(self._apply(session, event, now, tally))
                    self._cursor.mark(session, event_id)
                except DeviceTrustError as exc:
                    raise _Failed(index, event_id, exc) from exc
        return touched

    def _apply(self, session: Session, event: OutboxRow, now: datetime, tally: _Tally) -> list[str]:
        payload: dict[str, Any] = event.payload
        kind = EventType(event.type)
        touched: list[str] = []

        def revoke(physical_id: str | None, reason: x509.ReasonFlags) -> None:
            if physical_id:
                rows = self._pki._revoke_unit(
                    session, physical_id, reason, at=now, actor=AUTO_ACTOR
                )
                tally.revoked += len(rows)
                touched.extend(row.issuer_ca_id for row in rows)

        def reissue(physical_id: str | None) -> None:
            if physical_id:
                cap = self._lifetime_cap(physical_id) if self._lifetime_cap else None
                new, old = self._pki._reissue_stale(
                    session, physical_id, at=now, actor=AUTO_ACTOR, max_lifetime=cap
                )
                tally.reissued += len(new)
                tally.revoked += len(old)  # superseded
                touched.extend(row.issuer_ca_id for row in old)

        if kind is EventType.DEVICE_STATE_CHANGED:
            unit = payload.get("physical_id")
            target = DeviceState(payload["to"])
            replaced = target in (DeviceState.DECOMMISSIONED, DeviceState.QUARANTINED) and (
                _part_of_replacement(session, event, unit)
            )
            if replaced:
                revoke(unit, R.superseded)
            elif target is DeviceState.SUSPENDED:
                revoke(unit, R.certificate_hold)
            elif target is DeviceState.QUARANTINED:
                revoke(unit, R.privilege_withdrawn)
            elif target is DeviceState.DECOMMISSIONED:
                revoke(unit, R.cessation_of_operation)
            elif payload.get("from") == DeviceState.SUSPENDED.value and unit:
                rows = self._pki._release_unit_holds(
                    session, unit, at=now, actor=AUTO_ACTOR, placed_by=AUTO_ACTOR
                )
                tally.released += len(rows)
                touched.extend(row.issuer_ca_id for row in rows)
                reissue(unit)
        elif kind is EventType.DEVICE_REPLACED:
            revoke(payload.get("old_physical_id"), R.superseded)
            reissue(payload.get("new_physical_id"))
        elif kind is EventType.DEVICE_TRANSFERRED:
            reissue(payload.get("from_physical_id"))
            reissue(payload.get("to_physical_id"))
        else:  # renamed, bound, unbound
            reissue(payload.get("physical_id"))
        return touched


def _part_of_replacement(session: Session, event: OutboxRow, physical_id: str | None) -> bool:
    """A replacement writes the old unit's state change and `device.replaced` in one
    transaction, with the same time: then the certificates are superseded, not retired."""
    if not physical_id:
        return False
    payloads = session.execute(
        select(OutboxRow.payload).where(
            OutboxRow.type == EventType.DEVICE_REPLACED.value,
            OutboxRow.id > event.id,
            OutboxRow.id <= event.id + _REPLACEMENT_WINDOW,
            OutboxRow.occurred_at == event.occurred_at,
        )
    ).scalars()
    return any(p.get("old_physical_id") == physical_id for p in payloads)

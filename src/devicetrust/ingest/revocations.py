"""`RevocationFollower`: keeps a Mosquitto broker in step with revocations, from the outbox.

    device.state_changed   rewrite ACL (deny entries) and CRL files, SIGHUP, then
    device.replaced        disable (kick) units that may not connect, enable units back
    credential.revoked     in service; kick the live session of a unit whose certificate
    credential.hold_released  was revoked while it stays in service (its new certificate
    crl.generated          may connect, the revoked one no longer passes the CRL)

Order matters and is fixed: files first, then SIGHUP, then the kick, so a kicked device that
reconnects at once meets the reloaded ACL and CRL. Every action is recomputed from the
database (the unit's state, the latest CRLs), so handling an event twice does no harm.

Delivery is at-least-once: events are marked consumed (consumer `ingest.revocations`, its
own cursor beside the AutoRevoker's) only after the broker acted; a failure leaves them for
the next run. The cursor is a low-water mark that only passes events older than `settle`
(outbox ids can commit out of order), like `pki.auto_revoke`. Run one follower per broker,
on the broker's host (it writes the broker's files and signals it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from devicetrust.domain.clock import Clock
from devicetrust.domain.events import EventType
from devicetrust.ingest.broker_files import (
    DENIED_STATES,
    BrokerFiles,
    refresh_runtime_files,
    reload_broker,
)
from devicetrust.ingest.dynsec import DynsecControl
from devicetrust.store.database import Database
from devicetrust.store.models import (
    PhysicalIdentityRow,
)
from devicetrust.store.outbox_cursor import OutboxCursor

_log = logging.getLogger(__name__)

CONSUMER = "ingest.revocations"
HANDLED = (
    EventType.DEVICE_STATE_CHANGED,
    EventType.DEVICE_REPLACED,
    EventType.CREDENTIAL_REVOKED,
    EventType.CREDENTIAL_HOLD_RELEASED,
    EventType.CRL_GENERATED,
)
_HANDLED_VALUES = [t.value for t in HANDLED]
_DENIED_VALUES = {s.value for s in DENIED_STATES}


@dataclass(frozen=True, slots=True)
class FollowReport:
    events: int = 0
    reloaded: bool = False
    disabled: tuple[str, ...] = ()
    kicked: tuple[str, ...] = ()
    enabled: tuple[str, ...] = ()


class RevocationFollower:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        files: BrokerFiles,
        control: DynsecControl,
        *,
        topic_prefix: str = "devices",
        settle: timedelta = timedelta(minutes=10),
        batch: int = 500,
    ) -> None:
        self._db = db
        self._clock = clock
        self._files = files
        self._control = control
        self._prefix = topic_prefix
        self._cursor = OutboxCursor(
            db, clock, CONSUMER, _HANDLED_VALUES, settle=settle, batch=batch
        )

    def run_once(self) -> FollowReport:
        """Handle the pending events (up to `batch`); safe to call at any time."""
        self._cursor.ensure()
        events = self._cursor.pending()
        if not events:
            self._cursor.advance()
            return FollowReport()
        touched: set[str] = set()
        revoked: set[str] = set()
        for event in events:
            payload = event.payload
            kind = EventType(event.type)
            if kind is EventType.DEVICE_REPLACED:
                touched.update(filter(None, (payload.get("old_physical_id"),)))
            elif kind is not EventType.CRL_GENERATED and payload.get("physical_id"):
                touched.add(payload["physical_id"])
                if kind is EventType.CREDENTIAL_REVOKED:
                    revoked.add(payload["physical_id"])
        now = self._clock.now()
        reloaded = refresh_runtime_files(self._db, self._files, self._prefix, now)
        if reloaded:
            reload_broker(self._files)
        states = self._states(touched)
        disabled = sorted(u for u in touched if states.get(u) in _DENIED_VALUES)
        kicked = sorted(u for u in revoked if u not in disabled)
        enabled = sorted(u for u in touched - revoked if u not in disabled and u in states)
        self._control.disable(disabled)
        self._control.kick(kicked)
        self._control.enable(enabled)
        self._cursor.consume([e.id for e in events])
        self._cursor.advance()
        _log.info(
            "revocations followed: %d events, disabled %s, kicked %s",
            len(events),
            disabled,
            kicked,
        )
        return FollowReport(len(events), reloaded, tuple(disabled), tuple(kicked), tuple(enabled))

    def _states(self, units: set[str]) -> dict[str, str]:
        if not units:
            return {}
        with self._db.read() as session:
            rows = session.execute(
                select(PhysicalIdentityRow.id, PhysicalIdentityRow.state).where(
                    PhysicalIdentityRow.id.in_(sorted(units))
                )
            )
            return {pid: state for pid, state in rows}

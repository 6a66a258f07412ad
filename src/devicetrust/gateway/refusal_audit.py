"""Audit entries for what an authenticated device was refused at the gateway: a client id or
will that is not its own, a topic outside its own in PUBLISH or SUBSCRIBE. (Credential
refusals are audited by device authentication.)

    auditor = RefusalAuditor(db, clock)        # hooks call auditor.refused(...) on the loop
    auditor.flush()                            # a thread calls this every second or so

`refused` only appends to a queue (the gateway's loop never waits on the database). `flush`
writes the queued refusals in one transaction, at most one entry per (device, what was
refused) per `window`: a device hammering a foreign topic leaves one entry per window with
the count of attempts it stands for, not one per packet.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

from devicetrust.domain.clock import Clock
from devicetrust.domain.ids import PhysicalId
from devicetrust.store.database import Database
from devicetrust.store.journal import append_audit

from .codec import ReasonCode

ACTION = "gateway.refused"
MAX_QUEUED = 10_000


class RefusalAuditor:
    def __init__(
        self, db: Database, clock: Clock, *, window: timedelta = timedelta(seconds=10)
    ) -> None:
        self._db = db
        self._clock = clock
        self._window = window
        self._queue: deque[tuple[PhysicalId, ReasonCode, str]] = deque(maxlen=MAX_QUEUED)
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], datetime] = {}

    def refused(self, physical_id: PhysicalId, reason: ReasonCode, what: str) -> None:
        with self._lock:
            self._queue.append((physical_id, reason, what[:200]))

    def flush(self) -> int:
        """Write what was queued; returns the number of audit entries written."""
        with self._lock:
            queued = list(self._queue)
            self._queue.clear()
        if not queued:
            return 0
        now = self._clock.now()
        counts: dict[tuple[str, str], tuple[ReasonCode, int]] = {}
        for unit, reason, refused in queued:
            key = (str(unit), refused)
            counts[key] = (reason, counts.get(key, (reason, 0))[1] + 1)
        due = {k: v for k, v in counts.items() if self._due(k, now)}
        if due:
            with self._db.transaction() as session:
                for (subject, refused), (code, attempts) in due.items():
                    append_audit(
                        session,
                        at=now,
                        actor=f"device:{subject}",
                        action=ACTION,
                        subject=subject,
                        details={
                            "refused": refused,
                            "reason_code": int(code),
                            "attempts": attempts,
                        },
                    )
            for key in due:
                self._last[key] = now
        return len(due)

    def _due(self, key: tuple[str, str], now: datetime) -> bool:
        last = self._last.get(key)
        if len(self._last) > MAX_QUEUED:
            self._last.clear()
        return last is None or now - last >= self._window

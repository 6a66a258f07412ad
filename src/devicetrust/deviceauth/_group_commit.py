"""Group commit for the replay ledger: the single-use token ids that concurrent
authentications spend are written together, one multi-row
`INSERT ... ON CONFLICT DO NOTHING RETURNING` per batch (PostgreSQL and SQLite >= 3.35 share
the syntax), instead of one transaction per token.

No background thread and no timer: the first caller to arrive while no batch is being
written leads; it writes everything pending (up to `max_batch`) and hands the lead to the
oldest caller still waiting. Whoever arrives while a batch is being written waits for the
next one, so the batch window is the time one INSERT takes and a lone caller waits for
nothing. `max_wait` (off by default) lets a leader gather a little longer first.

The database decides who spent an id: the row that the INSERT returns is the caller's that
wins; every other caller presenting the same id -- in the same batch, in an earlier one or on
another server -- learns it was not new. Never reports an id as new that the database did not
insert, and never leaves a caller waiting after a failed write (each one gets the error).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from devicetrust.store.database import Database
from devicetrust.store.models_device_auth import DeviceTokenUseRow

MAX_BATCH = 500  # 5 parameters a row: far below SQLite's and PostgreSQL's limits


@dataclass(frozen=True, slots=True)
class TokenUse:
    physical_id: str
    method: str
    token_id: str
    used_at: datetime
    expires_at: datetime

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.physical_id, self.method, self.token_id)


@dataclass(eq=False, slots=True)
class _Waiter:
    use: TokenUse
    woken: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    new: bool | None = None
    error: BaseException | None = None


class GroupCommit:
    """`spend(use)` -> True when this call recorded the id, False when it was already spent."""

    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = MAX_BATCH,
        max_wait: timedelta = timedelta(0),
    ) -> None:
        if not 1 <= max_batch <= MAX_BATCH:
            raise ValueError(f"max_batch is 1 to {MAX_BATCH}")
        self._db = db
        insert = postgresql.insert if db.is_postgres else sqlite.insert
        t = cast(Table, DeviceTokenUseRow.__table__)  # Core, not the ORM bulk path
        self._stmt = (
            insert(t).on_conflict_do_nothing().returning(t.c.physical_id, t.c.method, t.c.token_id)
        )
        self._max_batch = max_batch
        self._max_wait = max_wait.total_seconds()
        self._cond = threading.Condition()
        self._pending: list[_Waiter] = []
        self._leading = False

    def spend(self, use: TokenUse) -> bool:
        me = _Waiter(use)
        with self._cond:
            self._pending.append(me)
            if not self._leading:  # nothing pending before me (see `_hand_over`)
                self._leading = me.leads = True
            elif len(self._pending) >= self._max_batch:
                self._cond.notify_all()  # a gathering leader need not wait longer
        if not me.leads:
            me.woken.wait()
        if me.leads:
            self._lead()
        if me.error is not None:
            raise me.error
        assert me.new is not None
        return me.new

    def _lead(self) -> None:
        with self._cond:
            if self._max_wait > 0 and len(self._pending) < self._max_batch:
                self._cond.wait_for(
                    lambda: len(self._pending) >= self._max_batch, timeout=self._max_wait
                )
            batch = self._pending[: self._max_batch]  # the leader is the oldest: included
            del self._pending[: self._max_batch]
        try:
            # A fresh context: the INSERT never joins a transaction the leader's own caller
            # may have open (`Database.transaction` joins the ambient one).
            inserted = contextvars.Context().run(self._write, [w.use for w in batch])
            first: set[tuple[str, str, str]] = set()
            for waiter in batch:  # an id twice in one batch: only its first caller may win
                key = waiter.use.key
                waiter.new = key in inserted and key not in first
                first.add(key)
        except BaseException as exc:  # every waiter of the batch gets the failure
            for waiter in batch:
                waiter.error = exc
        finally:
            self._hand_over()
            for waiter in batch:
                waiter.leads = False
                waiter.woken.set()

    def _hand_over(self) -> None:
        with self._cond:
            if self._pending:
                successor = self._pending[0]
                successor.leads = True
                successor.woken.set()
            else:
                self._leading = False

    def _write(self, uses: Sequence[TokenUse]) -> set[tuple[str, str, str]]:
        rows = [
            {
                "physical_id": u.physical_id,
                "method": u.method,
                "token_id": u.token_id,
                "used_at": u.used_at,
                "expires_at": u.expires_at,
            }
            for u in {use.key: use for use in reversed(uses)}.values()
        ]
        with self._db.transaction() as session:
            # One statement, compiled once and cached: SQLAlchemy's "insertmanyvalues"
            # renders the parameter sets as one multi-row VALUES with RETURNING.
            returned = session.connection().execute(self._stmt, rows).all()
        return {(str(p), str(m), str(i)) for p, m, i in returned}

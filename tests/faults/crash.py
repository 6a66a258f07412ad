"""Crash an operation at each of its database writes in turn.

`every_write(db, operation, check)` runs `operation` with the database failing at its first
write (INSERT/UPDATE/DELETE: a real DB-API `OperationalError` raised by the engine's
`before_cursor_execute`, the way a dying server or a full disk fails), calls `check` after
the crash, then fails it at its second write, and so on, until a run completes without
reaching the armed write. Returns the number of crashed runs and the final result."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import event, select

from devicetrust.domain.events import EventType
from devicetrust.events.audit import AuditLog
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow, IssuedCertificateRow

T = TypeVar("T")
_WRITE = re.compile(r"\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s", re.IGNORECASE)
MAX_WRITES = 200


class Crashed:
    """The armed fault: the database fails at write number `at` (0-based)."""

    def __init__(self, db: Database, at: int, only: str = "") -> None:
        self.at, self.writes, self.fired, self._only = at, 0, False, only
        self._error: type[Exception] = db.engine.dialect.dbapi.OperationalError  # type: ignore[union-attr]

    def before_cursor_execute(self, *args: Any) -> None:
        statement = str(args[2])
        if _WRITE.match(statement) and statement.startswith(self._only):
            if self.writes == self.at and not self.fired:
                self.fired = True
                raise self._error(f"injected fault at write {self.at}: {statement[:60]}")
            self.writes += 1


@contextmanager
def armed(db: Database, at: int, only: str = "") -> Iterator[Crashed]:
    """The database fails at write number `at` (counting only statements starting with
    `only` when given)."""
    fault = Crashed(db, at, only)
    event.listen(db.engine, "before_cursor_execute", fault.before_cursor_execute)
    try:
        yield fault
    finally:
        event.remove(db.engine, "before_cursor_execute", fault.before_cursor_execute)


def every_write(
    db: Database, operation: Callable[[], T], check: Callable[[BaseException], None], *,
    best_effort_after_commit: bool = False,
) -> tuple[int, T]:
    """`best_effort_after_commit`: the operation may absorb a fault in work it does after
    its commit (re-signing a CRL after a revocation: left stale for `refresh_due`); such a
    run counts as crashed too and must pass `check` like the others."""
    for at in range(MAX_WRITES):
        with armed(db, at) as fault:
            try:
                result = operation()
            except Exception as exc:
                assert fault.fired, f"failed without the injected fault: {exc!r}"
                check(exc)
                continue
        if not fault.fired:
            return at, result
        if not best_effort_after_commit:
            raise AssertionError(f"the operation swallowed the fault at write {at}")
        check(AssertionError(f"absorbed after the commit at write {at}"))
    raise AssertionError(f"more than {MAX_WRITES} writes")


def certificates_consistent(db: Database) -> None:
    """No certificate without its issuance record, no revocation without its record, and an
    audit chain that verifies."""
    with db.read() as session:
        certs = session.execute(select(
            IssuedCertificateRow.serial, IssuedCertificateRow.revoked_at)).all()
        audit = session.execute(select(AuditEntryRow.action, AuditEntryRow.details)).all()
    recorded = {(action, int(str(details.get("serial")), 16)) for action, details in audit
                if action in (EventType.CREDENTIAL_ISSUED.value,
                              EventType.CREDENTIAL_REVOKED.value) and details.get("serial")}
    for serial, revoked_at in certs:
        number = int(serial, 16)
        assert (EventType.CREDENTIAL_ISSUED.value, number) in recorded, serial
        if revoked_at is not None:
            assert (EventType.CREDENTIAL_REVOKED.value, number) in recorded, serial
    assert AuditLog(db).verify().ok

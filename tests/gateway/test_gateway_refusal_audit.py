"""What an authenticated device is refused at the gateway is audited: one entry per device
and refused thing per window, with the number of attempts it stands for."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from devicetrust.domain import FixedClock, PhysicalId
from devicetrust.events import AuditLog
from devicetrust.gateway.codec import ReasonCode
from devicetrust.gateway.refusal_audit import ACTION, RefusalAuditor
from devicetrust.store.database import Database, sqlite_url
from devicetrust.store.migrate import upgrade
from devicetrust.store.models import AuditEntryRow

UNIT = PhysicalId("6f1c1f4e-3c55-4d7e-9d1e-0f9f3c2b1a00")


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    made = Database(sqlite_url(tmp_path / "audit.db"))
    upgrade(made)
    yield made
    made.dispose()


def _entries(db: Database) -> list[AuditEntryRow]:
    with db.read() as session:
        rows = session.execute(select(AuditEntryRow).where(AuditEntryRow.action == ACTION))
        return list(rows.scalars())


def test_a_hammering_device_leaves_one_entry_per_window(database: Database) -> None:
    clock = FixedClock(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
    auditor = RefusalAuditor(database, clock, window=timedelta(seconds=10))
    for _ in range(5):
        auditor.refused(UNIT, ReasonCode.NOT_AUTHORIZED, "publish devices/other/telemetry")
    auditor.refused(UNIT, ReasonCode.NOT_AUTHORIZED, "subscribe #")
    assert auditor.flush() == 2
    entries = {e.details["refused"]: e for e in _entries(database)}
    assert entries["publish devices/other/telemetry"].details["attempts"] == 5
    assert entries["subscribe #"].details["reason_code"] == 0x87
    assert entries["subscribe #"].actor == f"device:{UNIT}"

    auditor.refused(UNIT, ReasonCode.NOT_AUTHORIZED, "subscribe #")
    assert auditor.flush() == 0  # within the window: counted, not written again
    clock.advance(timedelta(seconds=10))
    auditor.refused(UNIT, ReasonCode.NOT_AUTHORIZED, "subscribe #")
    assert auditor.flush() == 1
    assert len(_entries(database)) == 3
    assert AuditLog(database).verify().ok
    assert auditor.flush() == 0  # nothing queued: nothing written

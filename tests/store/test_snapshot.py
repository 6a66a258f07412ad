"""`Database.snapshot()`: the reads inside it share one session (one snapshot), a transaction
inside it is still its own, and `PolicyService.effective` reads a unit's policy once per
snapshot (a provisioning's source, key and lifetime checks) but at every call outside one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event, text

from devicetrust.domain import FixedClock
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.policy import PolicyService
from devicetrust.store.database import Database


@contextmanager
def counted(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def hook(*args: object) -> None:
        seen.append(str(args[2]))

    engines = {db.engine, db._read_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", hook)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", hook)


def test_reads_inside_a_snapshot_share_its_session(db: Database) -> None:
    with db.snapshot():
        with db.read() as inner, db.read() as again:
            assert inner is again
        with db.transaction() as writing:
            assert writing is not inner
            writing.execute(text("SELECT 1"))
        with db.snapshot(), db.read() as nested:
            assert nested is inner
    with db.read() as alone, db.read() as other:
        assert alone is not other


def test_effective_policy_is_read_once_per_snapshot(db: Database, clock: FixedClock) -> None:
    pid = IdentityService(db, clock).register_batch([UnitSpec("arm-r7", {})], actor="t")[0]
    policy = PolicyService(db, clock)
    with counted(db) as outside:
        for _ in range(3):
            policy.effective(pid.physical_id)
    with counted(db) as inside, db.snapshot():
        first = policy.effective(pid.physical_id)
        assert policy.effective(pid.physical_id) is first
        assert policy.effective(pid.physical_id) is first
    selects = [sql for sql in outside if sql.lstrip().upper().startswith("SELECT")]
    assert selects and len(selects) % 3 == 0
    assert len([sql for sql in inside if sql.lstrip().upper().startswith("SELECT")]) == (
        len(selects) // 3
    )

    policy.set("fleet", {"max_certificate_lifetime": "12h"}, actor="operator:t")
    with db.snapshot():
        assert policy.effective(pid.physical_id).policy.max_certificate_lifetime.seconds == (
            12 * 3600
        )

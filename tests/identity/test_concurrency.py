"""Concurrent replacements against real PostgreSQL transactions (and SQLite's lock).

Two operators replace the same broken unit at the same moment with two different new units:
exactly one replacement succeeds, the other is refused, and the invariants hold.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from devicetrust.domain import Conflict, DeviceState, FixedClock
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.store.database import Database
from devicetrust.store.models import BindingRow

NAME = "line-03-left-welding-12"


def _race(n: int, work: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Conflict as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.mark.parametrize("rounds", [5])
def test_simultaneous_replacements_never_both_succeed(
    db: Database, clock: FixedClock, rounds: int
) -> None:
    svc = IdentityService(db, clock)
    for r in range(rounds):
        name = f"{NAME}-r{r}"
        old = svc.register(UnitSpec("arm", {}), actor="f").physical_id
        news = [svc.register(UnitSpec("arm", {}), actor="f").physical_id for _ in range(4)]
        svc.create_logical(name, actor="op")
        svc.bind(name, old, actor="op")
        results = _race(
            4,
            lambda i, name=name, news=news, old=old: svc.replace(
                name, news[i], old_physical_id=old, actor=f"op{i}"
            ),
        )
        winners = [r for r in results if not isinstance(r, Conflict)]
        losers = [r for r in results if isinstance(r, Conflict)]
        assert len(winners) == 1 and len(losers) == 3
        holder = svc.get_logical(name).physical_id
        assert holder in news
        assert [b.physical_id for b in svc.history_of_logical(name)] == [old, holder]
        assert svc.get_physical(old).state is DeviceState.DECOMMISSIONED
        for other in set(news) - {holder}:
            assert svc.get_physical(other).state is DeviceState.MANUFACTURED


def test_simultaneous_binds_of_one_unit_to_two_names(db: Database, clock: FixedClock) -> None:
    svc = IdentityService(db, clock)
    unit = svc.register(UnitSpec("arm", {}), actor="f").physical_id
    names = [f"{NAME}-{i}" for i in range(4)]
    for name in names:
        svc.create_logical(name, actor="op")
    results = _race(4, lambda i: svc.bind(names[i], unit, actor="op"))
    assert sum(not isinstance(r, Conflict) for r in results) == 1
    with db.transaction() as s:
        open_count = s.execute(
            select(func.count()).select_from(BindingRow).where(BindingRow.ended_at.is_(None))
        ).scalar_one()
    assert open_count == 1

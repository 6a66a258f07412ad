"""The pool's taken names are read window by window, up to the first window with a free
name; the decision is the same as with the whole pool read at once."""

from __future__ import annotations

import pytest

from devicetrust.domain import FixedClock
from devicetrust.domain.ids import PhysicalId
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService
from devicetrust.provisioning import _facts
from devicetrust.provisioning.allocation import PoolPattern, next_free
from devicetrust.store.database import Database


@pytest.mark.parametrize("window", [1, 2, 3, 256])
def test_windows_find_the_first_free_name(
    db: Database,
    identity: IdentityService,
    clock: FixedClock,
    units: list[PhysicalIdentity],
    monkeypatch: pytest.MonkeyPatch,
    window: int,
) -> None:
    monkeypatch.setattr(_facts, "POOL_WINDOW", window)
    pattern = PoolPattern.parse("line-03-left-welding-{01..06}")
    for unit, number in zip(units[:3], (1, 2, 4), strict=True):
        name = pattern.name(number)
        identity.create_logical(name, actor="t")
        identity.bind(name, unit.physical_id, actor="t")
    identity.rename(pattern.name(4), "line-07-spare", actor="t")  # 04 still resolves
    me = PhysicalId(units[3].physical_id)
    with db.read() as session:
        taken = _facts.pool_taken(session, me, clock.now(), pattern)
    assert {pattern.name(n) for n in (1, 2)} <= taken
    assert next_free(pattern, taken) == "line-03-left-welding-03"
    # the unit's own name never counts as taken by another
    with db.read() as session:
        own = _facts.pool_taken(session, PhysicalId(units[0].physical_id), clock.now(), pattern)
    assert next_free(pattern, own) == "line-03-left-welding-01"

"""The pool's names are read window by window from where the last read found its first free
name (a hint per pool, kept by the process); the decision is the same as with the whole pool
read at once, and a name freed below the hint (unbind, decommissioning, a rename's grace
ending) is found again."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from devicetrust.domain import DeviceState, FixedClock
from devicetrust.domain.ids import PhysicalId
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.provisioning import _facts, _pool
from devicetrust.provisioning._pool import PoolHints
from devicetrust.provisioning.allocation import PoolPattern, next_free
from devicetrust.store.database import Database


@pytest.fixture
def units(identity: IdentityService) -> list[PhysicalIdentity]:
    return identity.register_batch([UnitSpec("arm-r7", {})] * 8, actor="factory")


PATTERN = PoolPattern.parse("line-03-left-welding-{01..06}")
POOL = ("enrollment-id", "line-03-left-welding-{01..06}")


def _first_free(db: Database, clock: FixedClock, me: str, hints: PoolHints) -> str:
    with db.read() as session:
        read = _pool.read_pool(
            session, PhysicalId(me), clock.now(), PATTERN, hints=hints, pool=POOL
        )
    assert read.free, "the pool is full"
    assert next_free(PATTERN, read.taken, read.first) == read.free[0]
    return read.free[0]


def _bind(identity: IdentityService, number: int, unit: PhysicalIdentity) -> None:
    identity.bind_creating(PATTERN.name(number), unit.physical_id, actor="t")


@pytest.mark.parametrize("window", [1, 2, 3, 256])
def test_windows_find_the_first_free_name(
    db: Database,
    identity: IdentityService,
    clock: FixedClock,
    units: list[PhysicalIdentity],
    monkeypatch: pytest.MonkeyPatch,
    window: int,
) -> None:
    monkeypatch.setattr(_pool, "POOL_WINDOW", window)
    for unit, number in zip(units[:3], (1, 2, 4), strict=True):
        _bind(identity, number, unit)
    identity.rename(PATTERN.name(4), "line-07-spare", actor="t")  # 04 still resolves
    hints = PoolHints()
    assert _first_free(db, clock, units[3].physical_id, hints) == "line-03-left-welding-03"
    # the unit's own name never counts as taken by another
    assert _first_free(db, clock, units[0].physical_id, PoolHints()) == "line-03-left-welding-01"
    # the hint stops at the first free name: the next read starts there
    hint = hints.get(POOL)
    assert hint is not None and hint.number == 3
    _bind(identity, 3, units[3])
    assert _first_free(db, clock, units[4].physical_id, hints) == "line-03-left-welding-05"


def test_a_hint_never_skips_a_name_freed_below_it(
    db: Database, identity: IdentityService, clock: FixedClock, units: list[PhysicalIdentity]
) -> None:
    hints = PoolHints()
    for number, unit in enumerate(units[:4], start=1):
        _bind(identity, number, unit)
    assert _first_free(db, clock, units[5].physical_id, hints) == "line-03-left-welding-05"
    identity.unbind(PATTERN.name(2), actor="t")
    assert _first_free(db, clock, units[5].physical_id, hints) == "line-03-left-welding-02"
    _bind(identity, 2, units[5])
    assert _first_free(db, clock, units[6].physical_id, hints) == "line-03-left-welding-05"
    identity.set_state(units[0].physical_id, DeviceState.DECOMMISSIONED, actor="t")
    assert _first_free(db, clock, units[6].physical_id, hints) == "line-03-left-welding-01"


def test_a_hint_past_a_former_name_lapses_when_its_grace_ends(
    db: Database, identity: IdentityService, clock: FixedClock, units: list[PhysicalIdentity]
) -> None:
    hints = PoolHints()
    _bind(identity, 1, units[0])
    identity.rename(PATTERN.name(1), "line-07-spare", actor="t")  # 01 resolves for a while
    _bind(identity, 2, units[1])
    assert _first_free(db, clock, units[2].physical_id, hints) == "line-03-left-welding-03"
    hint = hints.get(POOL)
    assert hint is not None and hint.number == 3 and hint.valid_until is not None
    clock.advance(hint.valid_until - clock.now() + timedelta(seconds=1))
    assert _first_free(db, clock, units[2].physical_id, hints) == "line-03-left-welding-01"


def test_a_hint_from_another_process_is_a_lower_bound(
    db: Database, identity: IdentityService, clock: FixedClock, units: list[PhysicalIdentity]
) -> None:
    """Two processes keep their own hints; names the other one bound are read as taken."""
    mine, theirs = PoolHints(), PoolHints()
    assert _first_free(db, clock, units[0].physical_id, mine) == "line-03-left-welding-01"
    for number, unit in enumerate(units[:3], start=1):
        assert _first_free(db, clock, unit.physical_id, theirs) == PATTERN.name(number)
        _bind(identity, number, unit)
    assert _first_free(db, clock, units[3].physical_id, mine) == "line-03-left-welding-04"


def test_the_unit_facts_are_read_in_one_statement(
    db: Database, identity: IdentityService, clock: FixedClock, units: list[PhysicalIdentity]
) -> None:
    _bind(identity, 1, units[0])
    with db.read() as session:
        unit = _facts.unit_facts(session, PhysicalId(units[0].physical_id))
        unknown = _facts.unit_facts(session, PhysicalId(str(uuid.uuid4())))
    assert unit == _facts.UnitFacts(
        DeviceState.PROVISIONED, registered=False, approved=None, current=PATTERN.name(1)
    )
    assert unknown is None

"""Claiming a pool name inside the provisioning's transaction: concurrent provisionings that
read the same free names each take a different one, never one another unit holds, and never
wait for each other."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from devicetrust.domain import FixedClock
from devicetrust.domain.ids import LogicalName, PhysicalId
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService
from devicetrust.provisioning import _pool
from devicetrust.store.database import Database

NAMES = tuple(LogicalName(f"line-09-{n:02d}") for n in range(1, 4))


def test_concurrent_claims_take_distinct_free_names(
    db: Database, identity: IdentityService, clock: FixedClock, units: list[PhysicalIdentity]
) -> None:
    if not db.is_postgres:
        pytest.skip("SQLite serialises writers: the first candidate is always taken")
    identity.bind_creating(NAMES[0], units[0].physical_id, actor="t")  # held: never claimed
    first, second = Session(db.engine), Session(db.engine)
    try:
        with first.begin(), second.begin():
            me, other = PhysicalId(units[1].physical_id), PhysicalId(units[2].physical_id)
            assert _pool.claim(first, me, clock.now(), NAMES) == NAMES[1]
            assert _pool.claim(second, other, clock.now(), NAMES) == NAMES[2]
            assert _pool.claim(second, other, clock.now(), NAMES[:2]) is None
        # both transactions ended: their claims with them
        with second.begin():
            assert _pool.claim(second, other, clock.now(), NAMES) == NAMES[1]
    finally:
        first.close()
        second.close()


def test_the_unit_own_name_is_claimable(
    db: Database, identity: IdentityService, clock: FixedClock, units: list[PhysicalIdentity]
) -> None:
    identity.bind_creating(NAMES[0], units[0].physical_id, actor="t")
    with db.transaction() as session:
        assert (
            _pool.claim(session, PhysicalId(units[0].physical_id), clock.now(), NAMES) == (NAMES[0])
        )
        assert _pool.claim(session, PhysicalId(units[0].physical_id), clock.now(), ()) is None

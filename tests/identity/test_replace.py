"""Replacement: the article's robot arm is replaced; history continues under the logical name."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devicetrust.domain import Conflict, DeviceState, FixedClock, ReplacementFate
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.store.database import Database

NAME = "line-03-left-welding-12"


@pytest.fixture
def svc(db: Database, clock: FixedClock) -> IdentityService:
    return IdentityService(db, clock)


def _unit(svc: IdentityService) -> str:
    return svc.register(UnitSpec("kuka-kr-16", {"controller": "C-1"}), actor="factory").physical_id


def test_replacement_moves_logical_identity_and_keeps_history(
    svc: IdentityService, clock: FixedClock
) -> None:
    old, new = _unit(svc), _unit(svc)
    svc.create_logical(NAME, {"site": "plant-1", "line": "03"}, actor="op")
    svc.bind(NAME, old, actor="op")
    bound_at = clock.now()
    clock.advance(timedelta(days=10))
    result = svc.replace(NAME, new, actor="op", fate=ReplacementFate.QUARANTINED)

    assert result.old_physical_id == old and result.new_physical_id == new
    assert svc.get_logical(NAME).physical_id == new
    assert svc.get_physical(old).state is DeviceState.QUARANTINED
    assert svc.get_physical(old).logical_name is None
    assert svc.get_physical(new).state is DeviceState.PROVISIONED
    history = svc.history_of_logical(NAME)
    assert [b.physical_id for b in history] == [old, new]
    assert history[0].ended_at == history[1].started_at == clock.now()
    holder = svc.holder_at(NAME, bound_at + timedelta(days=1))
    assert holder is not None and holder.physical_id == old
    assert [b.logical_name for b in svc.history_of_physical(old)] == [NAME]


def test_replacement_with_stale_old_unit_is_refused_and_changes_nothing(
    svc: IdentityService,
) -> None:
    a, b, c = _unit(svc), _unit(svc), _unit(svc)
    svc.create_logical(NAME, actor="op")
    svc.bind(NAME, a, actor="op")
    svc.replace(NAME, b, old_physical_id=a, actor="op")
    with pytest.raises(Conflict) as err:
        svc.replace(NAME, c, old_physical_id=a, actor="op")
    assert err.value.code == "identity.replacement_conflict"
    assert svc.get_logical(NAME).physical_id == b
    assert svc.get_physical(c).state is DeviceState.MANUFACTURED

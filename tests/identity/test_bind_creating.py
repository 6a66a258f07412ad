"""`bind_creating`: bind a name, creating its logical identity when it is new (provisioning's
one step), with the same refusals, events and audit entries as `create_logical` + `bind`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from devicetrust.domain import Conflict, DeviceState, FixedClock
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow, OutboxRow

NAME = "line-03-left-welding-12"


@pytest.fixture
def svc(db: Database, clock: FixedClock) -> IdentityService:
    return IdentityService(db, clock, name_grace=timedelta(days=7))


def _events(db: Database) -> list[str]:
    with db.read() as s:
        return list(s.execute(select(OutboxRow.type).order_by(OutboxRow.id)).scalars())


def _audited(db: Database) -> list[str]:
    with db.read() as s:
        return list(s.execute(select(AuditEntryRow.action).order_by(AuditEntryRow.seq)).scalars())


def test_a_new_name_is_created_and_bound(svc: IdentityService, db: Database) -> None:
    unit = svc.register(UnitSpec("arm", {}), actor="f").physical_id
    binding = svc.bind_creating(NAME, unit, actor="device", reason="provisioned")
    assert (binding.logical_name, binding.physical_id) == (NAME, unit)
    logical = svc.get_logical(NAME)
    assert (logical.physical_id, logical.attributes) == (unit, {})
    assert svc.get_physical(unit).state is DeviceState.PROVISIONED
    wanted = ["logical.created", "device.bound"]
    assert [e for e in _events(db) if e in wanted] == wanted
    assert [a for a in _audited(db) if a in wanted] == wanted


def test_an_existing_free_name_is_bound_without_creating(
    svc: IdentityService, db: Database
) -> None:
    unit = svc.register(UnitSpec("arm", {}), actor="f").physical_id
    created = svc.create_logical(NAME, {"line": "03"}, actor="op")
    svc.bind_creating(NAME, unit, actor="device")
    logical = svc.get_logical(NAME)
    assert (logical.logical_id, logical.physical_id) == (created.logical_id, unit)
    assert _events(db).count("logical.created") == 1


def test_a_held_name_is_refused_and_nothing_changes(svc: IdentityService, db: Database) -> None:
    first, second = (
        u.physical_id for u in svc.register_batch([UnitSpec("arm", {})] * 2, actor="f")
    )
    svc.bind_creating(NAME, first, actor="device")
    before = _events(db)
    with pytest.raises(Conflict) as err:
        svc.bind_creating(NAME, second, actor="device")
    assert err.value.code == "identity.already_bound"
    assert _events(db) == before
    assert svc.get_physical(second).state is DeviceState.MANUFACTURED


def test_a_name_in_its_grace_period_is_refused(svc: IdentityService, clock: FixedClock) -> None:
    first, second = (
        u.physical_id for u in svc.register_batch([UnitSpec("arm", {})] * 2, actor="f")
    )
    svc.bind_creating(NAME, first, actor="device")
    svc.rename(NAME, "line-04-left-welding-01", actor="op")
    with pytest.raises(Conflict) as err:
        svc.bind_creating(NAME, second, actor="device")
    assert err.value.code == "identity.name_in_grace"
    clock.advance(timedelta(days=8))
    assert svc.bind_creating(NAME, second, actor="device").physical_id == second


def test_a_unit_holding_a_name_is_refused(svc: IdentityService) -> None:
    unit = svc.register(UnitSpec("arm", {}), actor="f").physical_id
    svc.bind_creating(NAME, unit, actor="device")
    with pytest.raises(Conflict) as err:
        svc.bind_creating("line-03-left-welding-13", unit, actor="device")
    assert err.value.code == "identity.unit_already_bound"
    assert [lg.name for lg in svc.list_logical()] == [NAME]  # the new name was not kept

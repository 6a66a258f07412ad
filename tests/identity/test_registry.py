"""Registration, rename with grace period, lifecycle and events of the registry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from devicetrust.domain import Conflict, DeviceState, FixedClock, NotFound
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow, OutboxRow

NAME = "line-03-left-welding-12"


@pytest.fixture
def svc(db: Database, clock: FixedClock) -> IdentityService:
    return IdentityService(db, clock, name_grace=timedelta(days=7))


def _events(db: Database) -> list[str]:
    with db.transaction() as s:
        return list(s.execute(select(OutboxRow.type).order_by(OutboxRow.id)).scalars())


def test_register_records_model_serials_and_time(svc: IdentityService, clock: FixedClock) -> None:
    unit = svc.register(UnitSpec("kuka-kr-16", {"controller": "KRC4-1234"}), actor="factory")
    stored = svc.get_physical(unit.physical_id)
    assert stored.model == "kuka-kr-16"
    assert stored.hardware_serials == {"controller": "KRC4-1234"}
    assert stored.manufactured_at == clock.now()
    assert stored.state is DeviceState.MANUFACTURED


def test_batch_registration_is_all_or_nothing(svc: IdentityService, db: Database) -> None:
    units = svc.register_batch([UnitSpec("arm", {"n": str(i)}) for i in range(50)], actor="f")
    assert len({u.physical_id for u in units}) == 50
    assert len(svc.list_physical(limit=1000)) == 50
    assert _events(db).count("identity.created") == 50


def test_rename_keeps_old_name_resolvable_for_grace(
    svc: IdentityService, clock: FixedClock
) -> None:
    unit = svc.register(UnitSpec("arm", {}), actor="f").physical_id
    svc.create_logical(NAME, actor="op")
    svc.bind(NAME, unit, actor="op")
    svc.rename(NAME, "line-04-left-welding-01", actor="op")
    assert svc.get_logical(NAME).name == "line-04-left-welding-01"
    assert svc.get_logical("line-04-left-welding-01").former_names == (NAME,)
    assert [b.physical_id for b in svc.history_of_logical(NAME)] == [unit]
    assert svc.history_of_logical(NAME)[0].name_at_start == NAME
    with pytest.raises(Conflict) as err:
        svc.create_logical(NAME, actor="op")
    assert err.value.code == "identity.name_in_grace"
    clock.advance(timedelta(days=8))
    with pytest.raises(NotFound):
        svc.get_logical(NAME)
    svc.create_logical(NAME, actor="op")  # free again after the grace period
    assert svc.get_logical(NAME).physical_id is None


def test_lifecycle_through_the_service(svc: IdentityService) -> None:
    unit = svc.register(UnitSpec("arm", {}), actor="f").physical_id
    svc.create_logical(NAME, actor="op")
    svc.bind(NAME, unit, actor="op")
    assert svc.set_state(unit, DeviceState.ACTIVE, actor="op").state is DeviceState.ACTIVE
    assert svc.set_state(unit, DeviceState.QUARANTINED, actor="op").state is DeviceState.QUARANTINED
    released = svc.set_state(unit, DeviceState.ACTIVE, actor="op", release=True)
    assert released.state is DeviceState.SUSPENDED
    svc.set_state(unit, DeviceState.DECOMMISSIONED, actor="op", reason="end of life")
    assert svc.get_logical(NAME).physical_id is None
    assert svc.history_of_logical(NAME)[0].end_reason == "decommissioned"


def test_transfer_leaves_old_unit_live(svc: IdentityService) -> None:
    a, b = (svc.register(UnitSpec("arm", {}), actor="f").physical_id for _ in range(2))
    svc.create_logical(NAME, actor="op")
    svc.bind(NAME, a, actor="op")
    svc.transfer(NAME, b, actor="op")
    assert svc.get_physical(a).state is DeviceState.PROVISIONED
    assert svc.get_physical(a).logical_name is None
    assert svc.get_physical(b).logical_name == NAME


def test_every_change_is_audited_and_evented(svc: IdentityService, db: Database) -> None:
    a, b = (svc.register(UnitSpec("arm", {}), actor="f").physical_id for _ in range(2))
    svc.create_logical(NAME, actor="op")
    svc.bind(NAME, a, actor="op")
    svc.replace(NAME, b, actor="op")
    events = _events(db)
    assert "device.replaced" in events and "device.bound" in events
    assert "device.state_changed" in events
    with db.transaction() as s:
        audited = list(
            s.execute(select(AuditEntryRow.action).order_by(AuditEntryRow.seq)).scalars()
        )
    assert audited == events


def test_key_fingerprints_recorded_once(svc: IdentityService, db: Database) -> None:
    unit = svc.register(UnitSpec("arm", {}), actor="f").physical_id
    fp = "SHA256:" + "AB" * 32
    svc.add_key_fingerprint(unit, fp, actor="f")
    stored = svc.add_key_fingerprint(unit, fp.lower(), actor="f")
    assert stored.key_fingerprints == ("sha256:" + "ab" * 32,)
    assert _events(db).count("device.key_registered") == 1
    with pytest.raises(Exception) as err:
        svc.add_key_fingerprint(unit, "md5:abc", actor="f")
    assert getattr(err.value, "code", "") == "identity.invalid_fingerprint"

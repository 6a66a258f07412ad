"""Bad input gets a precise error and leaves the database exactly as it was."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devicetrust.domain import DeviceState, DeviceTrustError, FixedClock
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.store.database import Database
from tests.conftest import snapshot_tables

NAME = "line-03-left-welding-12"


@pytest.fixture
def world(db: Database, clock: FixedClock) -> tuple[IdentityService, str, str, str]:
    svc = IdentityService(db, clock)
    a, b, dead = (svc.register(UnitSpec("arm", {}), actor="f").physical_id for _ in range(3))
    svc.create_logical(NAME, actor="op")
    svc.create_logical("line-03-left-welding-13", actor="op")
    svc.bind(NAME, a, actor="op")
    svc.set_state(dead, DeviceState.DECOMMISSIONED, actor="op")
    return svc, a, b, dead


CASES: dict[str, tuple[str, Callable[[IdentityService, str, str, str], object]]] = {
    "malformed name": (
        "identity.invalid_name",
        lambda s, a, b, d: s.create_logical("Bad Name", actor="x"),
    ),
    "injection name": (
        "identity.invalid_name",
        lambda s, a, b, d: s.create_logical("x'; DROP TABLE bindings;--", actor="x"),
    ),
    "duplicate name": ("identity.name_taken", lambda s, a, b, d: s.create_logical(NAME, actor="x")),
    "unknown physical id": (
        "identity.physical_not_found",
        lambda s, a, b, d: s.get_physical("c2c38155-b0d2-48b6-82fd-22fe3b316224"),
    ),
    "malformed physical id": (
        "identity.invalid_physical_id",
        lambda s, a, b, d: s.bind("line-03-left-welding-13", "robot-1", actor="x"),
    ),
    "unknown logical": (
        "identity.logical_not_found",
        lambda s, a, b, d: s.bind("line-99", b, actor="x"),
    ),
    "double binding of name": (
        "identity.already_bound",
        lambda s, a, b, d: s.bind(NAME, b, actor="x"),
    ),
    "unit holds another name": (
        "identity.unit_already_bound",
        lambda s, a, b, d: s.bind("line-03-left-welding-13", a, actor="x"),
    ),
    "bind decommissioned unit": (
        "identity.unit_not_live",
        lambda s, a, b, d: s.bind("line-03-left-welding-13", d, actor="x"),
    ),
    "replace with decommissioned": (
        "identity.unit_not_live",
        lambda s, a, b, d: s.replace(NAME, d, actor="x"),
    ),
    "replace by itself": (
        "identity.replace_same_unit",
        lambda s, a, b, d: s.replace(NAME, a, actor="x"),
    ),
    "replace unbound name": (
        "identity.not_bound",
        lambda s, a, b, d: s.replace("line-03-left-welding-13", b, actor="x"),
    ),
    "invalid transition": (
        "lifecycle.invalid_transition",
        lambda s, a, b, d: s.set_state(b, DeviceState.ACTIVE, actor="x"),
    ),
    "revive decommissioned": (
        "lifecycle.invalid_transition",
        lambda s, a, b, d: s.set_state(d, DeviceState.ACTIVE, actor="x"),
    ),
    "release non-quarantined": (
        "lifecycle.not_quarantined",
        lambda s, a, b, d: s.set_state(a, DeviceState.ACTIVE, actor="x", release=True),
    ),
    "rename onto taken": (
        "identity.name_taken",
        lambda s, a, b, d: s.rename(NAME, "line-03-left-welding-13", actor="x"),
    ),
    "rename to bad": (
        "identity.invalid_name",
        lambda s, a, b, d: s.rename(NAME, "LINE", actor="x"),
    ),
    "bad attributes": (
        "identity.invalid_attributes",
        lambda s, a, b, d: s.update_attributes(NAME, {"site": 3}, actor="x"),
    ),
    "bad batch": (
        "identity.invalid_model",
        lambda s, a, b, d: s.register_batch([UnitSpec("ok", {}), UnitSpec("", {})], actor="x"),
    ),
    "bad serials": (
        "identity.invalid_serials",
        lambda s, a, b, d: s.register(UnitSpec("m", {"cpu": ""}), actor="x"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_and_nothing_changed(
    case: str, world: tuple[IdentityService, str, str, str], db: Database
) -> None:
    code, action = CASES[case]
    before = snapshot_tables(db)
    with pytest.raises(DeviceTrustError) as err:
        action(*world)
    assert err.value.code == code
    assert snapshot_tables(db) == before

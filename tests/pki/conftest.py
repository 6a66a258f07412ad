"""Fixtures for the CA tests: a keyring of encrypted file keys under a test KEK, the identity
registry and the CA service over the `db` fixture (SQLite and PostgreSQL), a hierarchy, and
registered units."""

from __future__ import annotations

import pytest

from devicetrust.domain import DeviceState
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService, UnitSpec

ACTOR = "operator:test"
NAME = "line-03-left-welding-12"


@pytest.fixture
def unit(identity: IdentityService) -> PhysicalIdentity:
    """A manufactured unit, not yet bound."""
    return identity.register(UnitSpec("arm-r7", {"controller": "C-0001"}), actor="factory")


@pytest.fixture
def bound_unit(identity: IdentityService, unit: PhysicalIdentity) -> PhysicalIdentity:
    """The unit holding `NAME`, activated."""
    identity.create_logical(NAME, actor=ACTOR)
    identity.bind(NAME, unit.physical_id, actor=ACTOR)
    return identity.set_state(unit.physical_id, DeviceState.ACTIVE, actor=ACTOR)

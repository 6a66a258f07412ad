"""Fixtures for the CA tests: a keyring of encrypted file keys under a test KEK, the identity
registry and the CA service over the `db` fixture (SQLite and PostgreSQL), a hierarchy, and
registered units."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devicetrust.domain import DeviceState, FixedClock
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.pki import Hierarchy, Keyring, PkiService
from devicetrust.pki.keys import KekPassword
from devicetrust.store.database import Database
from devicetrust.vault import Vault

ACTOR = "operator:test"
NAME = "line-03-left-welding-12"


@pytest.fixture
def ca_vault() -> Iterator[Vault]:
    with Vault.from_key(os.urandom(32)) as kek:
        yield kek


@pytest.fixture
def keyring(tmp_path: Path, ca_vault: Vault) -> Iterator[Keyring]:
    keys = Keyring(tmp_path / "ca", password=KekPassword(ca_vault))
    yield keys
    keys.close()


@pytest.fixture
def identity(db: Database, clock: FixedClock) -> IdentityService:
    return IdentityService(db, clock)


@pytest.fixture
def pki(db: Database, clock: FixedClock, keyring: Keyring) -> Iterator[PkiService]:
    service = PkiService(db, clock, keyring)
    yield service
    service.close()


@pytest.fixture
def hierarchy(pki: PkiService) -> Hierarchy:
    return pki.init_hierarchy(actor=ACTOR)


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

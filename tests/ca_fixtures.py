"""CA fixtures shared by the PKI and provisioning suites (loaded as a plugin by
tests/conftest.py): a KEK, a keyring of file CA keys, the registry and the CA service over
the `db` fixture (SQLite and PostgreSQL), and an initialised hierarchy."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devicetrust.domain import FixedClock
from devicetrust.identity import IdentityService
from devicetrust.pki import Hierarchy, Keyring, PkiService
from devicetrust.pki.keys import KekPassword
from devicetrust.store.database import Database
from devicetrust.vault import Vault

ACTOR = "operator:test"


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

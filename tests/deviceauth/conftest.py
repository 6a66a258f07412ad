"""Fixtures for device authentication: the registry, the real CA (`tests.ca_fixtures`), a
vault, and the service over the `db` fixture (SQLite and PostgreSQL), with a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from devicetrust.deviceauth import DeviceAuthService, device_verifier
from devicetrust.domain import DeviceState, FixedClock
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.pki import Hierarchy, PkiService
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow, OutboxRow
from devicetrust.vault import Vault

ACTOR = "operator:test"
NAME = "line-03-left-welding-12"
RESOURCE = "mqtt.example.com"


@pytest.fixture
def vault(ca_vault: Vault) -> Vault:
    return ca_vault


@pytest.fixture
def auth(
    db: Database, clock: FixedClock, vault: Vault, pki: PkiService, hierarchy: Hierarchy
) -> Iterator[DeviceAuthService]:
    yield DeviceAuthService(db, clock, vault, cert_verifier=device_verifier(pki, clock))


@pytest.fixture
def unit(identity: IdentityService) -> PhysicalIdentity:
    """An active unit holding `NAME`."""
    registered = identity.register(UnitSpec("arm-r7", {"controller": "C-0001"}), actor="factory")
    identity.create_logical(NAME, actor=ACTOR)
    identity.bind(NAME, registered.physical_id, actor=ACTOR)
    return identity.set_state(registered.physical_id, DeviceState.ACTIVE, actor=ACTOR)


@pytest.fixture
def spare(identity: IdentityService) -> PhysicalIdentity:
    """A second unit, active, holding nothing (the replacement in a swap)."""
    registered = identity.register(UnitSpec("arm-r7", {"controller": "C-0002"}), actor="factory")
    identity.set_state(registered.physical_id, DeviceState.PROVISIONED, actor=ACTOR)
    return identity.set_state(registered.physical_id, DeviceState.ACTIVE, actor=ACTOR)


def refusals(db: Database) -> list[dict[str, Any]]:
    """The `device.auth_refused` audit entries, oldest first."""
    with db.read() as session:
        rows = session.execute(
            select(AuditEntryRow)
            .where(AuditEntryRow.action == "device.auth_refused")
            .order_by(AuditEntryRow.seq)
        ).scalars()
        return [dict(row.details, subject=row.subject) for row in rows]


def event_types(db: Database) -> list[str]:
    with db.read() as session:
        return list(session.execute(select(OutboxRow.type).order_by(OutboxRow.id)).scalars())

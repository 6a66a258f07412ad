"""Fixtures for the policy suite: the policy service over the `db` fixture (SQLite and
PostgreSQL) with the fixed clock, and real provisioning (registry, CA hierarchy, enrollments)
to produce devices whose posture is computed."""

from __future__ import annotations

import pytest

from devicetrust.domain import FixedClock
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.pki import Hierarchy, PkiService
from devicetrust.policy import PolicyService
from devicetrust.provisioning import DataPlane, ProvisioningService
from devicetrust.store.database import Database
from devicetrust.vault import Vault
from tests.operator_api import client, pid, platform, reader, writer  # noqa: F401 - fixtures

ACTOR = "operator:test"


@pytest.fixture
def policy(db: Database, clock: FixedClock) -> PolicyService:
    return PolicyService(db, clock)


@pytest.fixture
def vault(ca_vault: Vault) -> Vault:
    """The KEK that seals enrollment keys (and protects the CA key files)."""
    return ca_vault


@pytest.fixture
def provisioning(
    db: Database,
    clock: FixedClock,
    identity: IdentityService,
    pki: PkiService,
    hierarchy: Hierarchy,
    ca_vault: Vault,
) -> ProvisioningService:
    return ProvisioningService(
        db, clock, identity, pki, ca_vault, data_plane=DataPlane("mqtt.example", 8883)
    )


@pytest.fixture
def units(identity: IdentityService) -> list[PhysicalIdentity]:
    return identity.register_batch(
        [UnitSpec("arm-r7", {"controller": f"C-{n:04d}"}) for n in range(3)], actor="factory"
    )

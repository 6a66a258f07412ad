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
from devicetrust.provisioning import Allocation, AllocationPolicy, DataPlane, ProvisioningService
from devicetrust.store.database import Database
from devicetrust.vault import Vault
from tests.operator_api import client, pid, platform, reader, writer  # noqa: F401 - fixtures
from tests.provisioning.conftest import token_request

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


@pytest.fixture
def line_03_member(
    provisioning: ProvisioningService, units: list[PhysicalIdentity], clock: FixedClock
) -> tuple[str, str]:
    """(member, outsider): the first unit provisioned through the symmetric-key group
    enrollment `line-03`, the second left out of it."""
    shown = provisioning.enrollments.create_symmetric_group(
        "line-03",
        Allocation(AllocationPolicy.POOL, pool_pattern="line-03-cell-{01..09}"),
        actor=ACTOR,
    )
    member, outsider = units[0].physical_id, units[1].physical_id
    key = provisioning.enrollments.derive_device_key("line-03", member)
    provisioning.provision(token_request(member, key, clock))
    shown.key[:] = bytes(len(shown.key))
    return member, outsider

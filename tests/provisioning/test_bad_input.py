"""Every bad input of the issue: a clear error with its code, one `provisioning.refused`
audit entry, and no other change (every table but the audit log is unchanged)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from devicetrust.domain import FixedClock
from devicetrust.domain.errors import DeviceTrustError
from devicetrust.domain.ids import new_physical_id
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.provisioning import (
    Allocation,
    AllocationPolicy,
    AttestationKind,
    ProvisioningService,
    RegistrationRequest,
)
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow
from tests.conftest import snapshot_tables
from tests.provisioning.conftest import ACTOR, token_request

AUDIT_TABLES = ("audit_log", "audit_head")
POOL = Allocation(AllocationPolicy.POOL, pool_pattern="cell-{1..1}")


def _setup(
    service: ProvisioningService, units: list[PhysicalIdentity], clock: FixedClock
) -> dict[str, object]:
    group = service.enrollments.create_symmetric_group("g", POOL, actor=ACTOR)
    disabled = service.enrollments.create_individual_key(units[1].physical_id, POOL, actor=ACTOR)
    service.enrollments.set_enabled(disabled.enrollment.enrollment_id, False, actor=ACTOR)
    expired = service.enrollments.create_individual_key(
        units[2].physical_id, POOL, actor=ACTOR, expires_at=clock.now() - timedelta(seconds=1)
    )
    # the pool's only name goes to units[3]
    key3 = service.enrollments.derive_device_key("g", units[3].physical_id)
    used = token_request(units[3].physical_id, key3, clock)
    service.provision(used)
    return {"group": group.key, "disabled": disabled.key, "expired": expired.key, "used": used}


CASES: dict[str, tuple[str, Callable[..., RegistrationRequest]]] = {
    "unknown device": (
        "provisioning.unknown_device",
        lambda u, k, c: token_request(new_physical_id(), bytes(32), c),
    ),
    "malformed physical id": (
        "identity.invalid_physical_id",
        lambda u, k, c: token_request("not-a-uuid", bytes(32), c),
    ),
    "disabled enrollment": (
        "provisioning.enrollment_disabled",
        lambda u, k, c: token_request(u[1].physical_id, k["disabled"], c),
    ),
    "expired enrollment": (
        "provisioning.enrollment_expired",
        lambda u, k, c: token_request(u[2].physical_id, k["expired"], c),
    ),
    "wrong token": (
        "provisioning.token_invalid",
        lambda u, k, c: token_request(u[0].physical_id, bytes(32), c),
    ),
    "replayed token": ("provisioning.token_replayed", lambda u, k, c: k["used"]),
    "malformed token": (
        "provisioning.malformed_evidence",
        lambda u, k, c: RegistrationRequest(
            u[0].physical_id, AttestationKind.SYMMETRIC_KEY, b"", {"token": "x.y.z"}
        ),
    ),
    "malformed csr": (
        "pki.csr_malformed",
        lambda u, k, c: token_request(
            u[0].physical_id, _derive(k, u[0].physical_id), c, csr=b"-----BEGIN garbage"
        ),
    ),
    "no enrollment for the method": (
        "provisioning.no_enrollment",
        lambda u, k, c: RegistrationRequest(u[0].physical_id, AttestationKind.X509, b"", {}),
    ),
    "pool exhausted": (
        "provisioning.pool_exhausted",
        lambda u, k, c: token_request(u[0].physical_id, _derive(k, u[0].physical_id), c),
    ),
}


def _derive(keys: dict[str, object], physical_id: str) -> bytes:
    group = keys["group"]
    assert isinstance(group, bytearray)
    return hmac.digest(bytes(group), physical_id.encode(), hashlib.sha256)


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_audited_and_changes_nothing(
    case: str,
    service: ProvisioningService,
    db: Database,
    clock: FixedClock,
    units: list[PhysicalIdentity],
) -> None:
    keys = _setup(service, units, clock)
    code, build = CASES[case]
    request = build(units, keys, clock)
    before = snapshot_tables(db)
    with pytest.raises(DeviceTrustError) as err:
        service.provision(request)
    assert err.value.code == code
    after = snapshot_tables(db)
    for table in before:
        if table not in AUDIT_TABLES:
            assert after[table] == before[table], table
    assert len(after["audit_log"]) == len(before["audit_log"]) + 1
    with db.read() as session:
        last = session.execute(
            select(AuditEntryRow).order_by(AuditEntryRow.seq.desc()).limit(1)
        ).scalar_one()
    assert last.action == "provisioning.refused"
    assert last.details["code"] == code
    assert set(last.details) == {"code", "method", "source"}  # never the evidence


def test_failures_are_rate_limited_per_identity(
    service: ProvisioningService, clock: FixedClock, units: list[PhysicalIdentity]
) -> None:
    service.enrollments.create_symmetric_group("g", POOL, actor=ACTOR)
    pid = units[0].physical_id
    for n in range(10):
        with pytest.raises(DeviceTrustError) as err:
            service.provision(token_request(pid, bytes(32), clock, source=f"10.1.0.{n}"))
        assert err.value.code == "provisioning.token_invalid"
    good = service.enrollments.derive_device_key("g", pid)
    with pytest.raises(DeviceTrustError) as err:
        service.provision(token_request(pid, good, clock, source="10.2.0.1"))
    assert err.value.code == "provisioning.rate_limited"
    assert err.value.status == 429
    clock.advance(timedelta(seconds=7))  # one token back
    assert service.provision(token_request(pid, good, clock)).logical_name == "cell-1"

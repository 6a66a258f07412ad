"""Allocation flows with the registry: manual approval, pre-authorised replacement
(history continues under the logical identity), re-assignment, enrollment changes audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from devicetrust.domain import DeviceState, FixedClock
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService
from devicetrust.pki import PkiService
from devicetrust.provisioning import (
    Allocation,
    AllocationPolicy,
    NameHeld,
    NotPending,
    ProvisioningService,
    RegistrationStatus,
    Reprovision,
)
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow, OutboxRow
from tests.provisioning.conftest import ACTOR, token_request

NAME = "line-03-left-welding-12"


def test_manual_approval_flow(
    service: ProvisioningService,
    identity: IdentityService,
    clock: FixedClock,
    units: list[PhysicalIdentity],
) -> None:
    service.enrollments.create_symmetric_group(
        "manual", Allocation(AllocationPolicy.MANUAL), actor=ACTOR
    )
    pid = units[0].physical_id
    key = service.enrollments.derive_device_key("manual", pid)
    first = service.provision(token_request(pid, key, clock))
    assert first.status is RegistrationStatus.PENDING and first.retry_after == 30
    assert first.certificate_pem is None
    assert service.provision(token_request(pid, key, clock)).status is RegistrationStatus.PENDING
    assert [r.physical_id for r in service.list_pending()] == [pid]
    assert identity.get_physical(pid).state is DeviceState.MANUFACTURED
    approved = service.approve(pid, NAME, actor=ACTOR)
    assert approved.status is RegistrationStatus.APPROVED
    with pytest.raises(NotPending):
        service.approve(pid, NAME, actor=ACTOR)
    result = service.provision(token_request(pid, key, clock))
    assert result.status is RegistrationStatus.ASSIGNED and result.logical_name == NAME
    assert service.registration(pid).status is RegistrationStatus.ASSIGNED
    assert service.list_pending() == []


def test_approval_of_a_held_name_is_refused(
    service: ProvisioningService,
    identity: IdentityService,
    clock: FixedClock,
    units: list[PhysicalIdentity],
) -> None:
    identity.create_logical(NAME, actor=ACTOR)
    identity.bind(NAME, units[1].physical_id, actor=ACTOR)
    service.enrollments.create_symmetric_group(
        "manual", Allocation(AllocationPolicy.MANUAL), actor=ACTOR
    )
    pid = units[0].physical_id
    service.provision(
        token_request(pid, service.enrollments.derive_device_key("manual", pid), clock)
    )
    with pytest.raises(NameHeld):
        service.approve(pid, NAME, actor=ACTOR)


def test_preauthorised_replacement_continues_the_history(
    service: ProvisioningService,
    identity: IdentityService,
    pki: PkiService,
    db: Database,
    clock: FixedClock,
    units: list[PhysicalIdentity],
) -> None:
    old, new = units[0].physical_id, units[1].physical_id
    static = Allocation(AllocationPolicy.STATIC, static_name=NAME)  # type: ignore[arg-type]
    old_key = service.enrollments.create_individual_key(old, static, actor=ACTOR).key
    service.provision(token_request(old, old_key, clock))
    identity.set_state(old, DeviceState.ACTIVE, actor=ACTOR)
    clock.advance(timedelta(days=30))
    new_key = service.enrollments.create_individual_key(
        new, Allocation(AllocationPolicy.MANUAL), actor=ACTOR, replaces=NAME
    ).key
    result = service.provision(token_request(new, new_key, clock))
    assert result.logical_name == NAME
    history = identity.history_of_logical(NAME)
    assert [b.physical_id for b in history] == [old, new]
    assert history[0].ended_at == history[1].started_at
    assert identity.get_physical(old).state is DeviceState.DECOMMISSIONED
    with db.read() as session:
        types = list(session.execute(select(OutboxRow.type).order_by(OutboxRow.id)).scalars())
    assert "device.replaced" in types and types[-1] == "device.provisioned"
    assert pki.get_certificate(result.serial or "").logical_name == NAME


def test_reassignment_when_the_enrollment_says_so(
    service: ProvisioningService,
    identity: IdentityService,
    clock: FixedClock,
    units: list[PhysicalIdentity],
) -> None:
    pid = units[0].physical_id
    shown = service.enrollments.create_individual_key(
        pid,
        Allocation(AllocationPolicy.STATIC, static_name="cell-a"),  # type: ignore[arg-type]
        actor=ACTOR,
    )
    assert service.provision(token_request(pid, shown.key, clock)).logical_name == "cell-a"
    ref = shown.enrollment.enrollment_id
    service.enrollments.set_allocation(
        ref,
        Allocation(AllocationPolicy.STATIC, static_name="cell-b"),  # type: ignore[arg-type]
        actor=ACTOR,
    )
    assert service.provision(token_request(pid, shown.key, clock)).logical_name == "cell-a"
    service.enrollments.set_allocation(
        ref,
        Allocation(AllocationPolicy.STATIC, static_name="cell-b", reprovision=Reprovision.REASSIGN),  # type: ignore[arg-type]
        actor=ACTOR,
    )
    assert service.provision(token_request(pid, shown.key, clock)).logical_name == "cell-b"
    assert identity.get_logical("cell-a").physical_id is None
    assert identity.get_logical("cell-b").physical_id == pid


def test_enrollment_changes_are_audited_and_evented(
    service: ProvisioningService, db: Database, units: list[PhysicalIdentity]
) -> None:
    shown = service.enrollments.create_symmetric_group(
        "g", Allocation(AllocationPolicy.MANUAL), actor=ACTOR
    )
    service.enrollments.set_enabled("g", False, actor=ACTOR)
    service.enrollments.set_expiry("g", None, actor=ACTOR)
    with db.read() as session:
        actions = list(session.execute(select(AuditEntryRow).order_by(AuditEntryRow.seq)).scalars())
    assert [a.action for a in actions][-3:] == [
        "enrollment.created",
        "enrollment.updated",
        "enrollment.updated",
    ]
    assert all(shown.key.hex() not in repr(a.details) for a in actions)
    assert not service.enrollments.get("g").enabled

"""Symmetric-key attestation end to end: group key, derived device keys, tokens (expiry,
clock skew, lifetime, replay), pool allocation, and the operational certificate."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from devicetrust.domain import DeviceState, FixedClock
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.pki import PkiService
from devicetrust.provisioning import (
    Allocation,
    AllocationPolicy,
    AttestationFailed,
    EnrollmentExists,
    MalformedEvidence,
    PoolExhausted,
    ProvisioningService,
    RegistrationStatus,
)
from devicetrust.store.database import Database
from devicetrust.store.models import EnrollmentRow
from tests.provisioning.conftest import ACTOR, token_request

POOL = Allocation(AllocationPolicy.POOL, pool_pattern="line-03-left-welding-{01..03}")


def _group(service: ProvisioningService) -> bytearray:
    shown = service.enrollments.create_symmetric_group("line-03", POOL, actor=ACTOR)
    return shown.key


def test_group_key_is_stored_only_sealed_and_derives_device_keys(
    service: ProvisioningService, db: Database, units: list[PhysicalIdentity]
) -> None:
    group_key = _group(service)
    assert len(group_key) == 32
    with db.read() as session:
        row = session.execute(select(EnrollmentRow)).scalar_one()
    assert row.sealed_key is not None and bytes(group_key) not in row.sealed_key
    pid = units[0].physical_id
    expected = hmac.digest(bytes(group_key), pid.encode(), hashlib.sha256)
    assert bytes(service.enrollments.derive_device_key("line-03", pid)) == expected


def test_pool_provisioning_until_exhausted(
    service: ProvisioningService,
    identity: IdentityService,
    clock: FixedClock,
    units: list[PhysicalIdentity],
    tmp_path: Path,
) -> None:
    _group(service)
    names = []
    for unit in units[:3]:
        key = service.enrollments.derive_device_key("line-03", unit.physical_id)
        result = service.provision(token_request(unit.physical_id, key, clock))
        assert result.status is RegistrationStatus.ASSIGNED
        names.append(result.logical_name)
        assert identity.get_physical(unit.physical_id).state is DeviceState.PROVISIONED
        assert result.topics["telemetry"] == f"devices/{unit.physical_id}/telemetry"
        assert (result.mqtt_host, result.mqtt_port) == ("mqtt.example", 8883)
    assert names == [f"line-03-left-welding-0{n}" for n in (1, 2, 3)]
    # the certificate verifies with openssl against the chain the device received
    assert result.certificate_pem and result.chain_pem
    (tmp_path / "leaf.pem").write_text(result.certificate_pem)
    (tmp_path / "chain.pem").write_text(result.chain_pem)
    done = subprocess.run(
        [
            "openssl",
            "verify",
            "-attime",
            str(int(clock.now().timestamp())),
            "-CAfile",
            tmp_path / "chain.pem",
            "-purpose",
            "sslclient",
            tmp_path / "leaf.pem",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # the fourth unit finds the pool exhausted
    fourth = units[3].physical_id
    key = service.enrollments.derive_device_key("line-03", fourth)
    with pytest.raises(PoolExhausted):
        service.provision(token_request(fourth, key, clock))
    assert identity.get_physical(fourth).state is DeviceState.MANUFACTURED


def test_reprovisioning_returns_the_current_assignment(
    service: ProvisioningService, clock: FixedClock, units: list[PhysicalIdentity]
) -> None:
    _group(service)
    pid = units[0].physical_id
    key = service.enrollments.derive_device_key("line-03", pid)
    first = service.provision(token_request(pid, key, clock))
    again = service.provision(token_request(pid, key, clock))
    assert again.logical_name == first.logical_name
    assert again.serial != first.serial


def test_token_replay_is_refused(
    service: ProvisioningService, clock: FixedClock, units: list[PhysicalIdentity]
) -> None:
    _group(service)
    pid = units[0].physical_id
    key = service.enrollments.derive_device_key("line-03", pid)
    request = token_request(pid, key, clock)
    service.provision(request)
    with pytest.raises(AttestationFailed) as err:
        service.provision(request)
    assert err.value.code == "provisioning.token_replayed"


@pytest.mark.parametrize(
    ("exp", "code"),
    [
        (timedelta(minutes=-4), None),  # expired, but within the 5-minute skew window
        (timedelta(minutes=-6), "provisioning.token_expired"),
        (timedelta(minutes=64), None),  # 1 h max lifetime + skew
        (timedelta(minutes=66), "provisioning.token_lifetime_exceeded"),
    ],
)
def test_expiry_and_clock_skew(
    service: ProvisioningService,
    clock: FixedClock,
    units: list[PhysicalIdentity],
    exp: timedelta,
    code: str | None,
) -> None:
    _group(service)
    pid = units[0].physical_id
    key = service.enrollments.derive_device_key("line-03", pid)
    request = token_request(pid, key, clock, exp=exp)
    if code is None:
        assert service.provision(request).status is RegistrationStatus.ASSIGNED
        return
    with pytest.raises(AttestationFailed) as err:
        service.provision(request)
    assert err.value.code == code


def test_a_token_is_never_accepted_after_expiry(
    service: ProvisioningService, clock: FixedClock, units: list[PhysicalIdentity]
) -> None:
    _group(service)
    pid = units[0].physical_id
    key = service.enrollments.derive_device_key("line-03", pid)
    request = token_request(pid, key, clock, exp=timedelta(minutes=1))
    clock.advance(timedelta(minutes=6, seconds=1))
    with pytest.raises(AttestationFailed) as err:
        service.provision(request)
    assert err.value.code == "provisioning.token_expired"


def test_wrong_key_and_token_for_another_unit(
    service: ProvisioningService, clock: FixedClock, units: list[PhysicalIdentity]
) -> None:
    _group(service)
    a, b = units[0].physical_id, units[1].physical_id
    key_a = service.enrollments.derive_device_key("line-03", a)
    with pytest.raises(AttestationFailed) as err:
        service.provision(token_request(a, bytes(32), clock))
    assert err.value.code == "provisioning.token_invalid"
    # a's valid token presented as b's registration
    stolen = token_request(a, key_a, clock)
    with pytest.raises(AttestationFailed) as err:
        service.provision(
            token_request(b, key_a, clock).__class__(b, stolen.method, stolen.csr, stolen.evidence)
        )
    assert err.value.code == "provisioning.token_invalid"
    with pytest.raises(MalformedEvidence):
        service.provision(stolen.__class__(a, stolen.method, stolen.csr, {"token": "not-a-token"}))


def test_individual_symmetric_key(
    service: ProvisioningService, clock: FixedClock, identity: IdentityService
) -> None:
    unit = identity.register(UnitSpec("arm-r7", {}), actor="factory")
    shown = service.enrollments.create_individual_key(
        unit.physical_id,
        Allocation(AllocationPolicy.STATIC, static_name="press-7"),  # type: ignore[arg-type]
        actor=ACTOR,
    )
    result = service.provision(token_request(unit.physical_id, shown.key, clock))
    assert result.logical_name == "press-7"
    assert identity.get_logical("press-7").physical_id == unit.physical_id


def test_pki_lifetime_is_the_policy_one(
    service: ProvisioningService, pki: PkiService, clock: FixedClock, units: list[PhysicalIdentity]
) -> None:
    _group(service)
    pid = units[0].physical_id
    result = service.provision(
        token_request(pid, service.enrollments.derive_device_key("line-03", pid), clock)
    )
    cert = pki.get_certificate(result.serial or "")
    assert cert.physical_id == pid and cert.logical_name == result.logical_name
    assert result.policy["certificate_lifetime_seconds"] > 0


def test_concurrent_devices_of_one_pool_get_distinct_names(
    service: ProvisioningService, identity: IdentityService, clock: FixedClock
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    service.enrollments.create_symmetric_group(
        "race", Allocation(AllocationPolicy.POOL, pool_pattern="race-{01..12}"), actor=ACTOR
    )
    units = identity.register_batch([UnitSpec("arm-r7", {})] * 12, actor="factory")
    requests = [
        token_request(
            u.physical_id,
            service.enrollments.derive_device_key("race", u.physical_id),
            clock,
            source=f"10.3.0.{n}",
        )
        for n, u in enumerate(units)
    ]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(service.provision, requests))
    names = sorted(r.logical_name or "" for r in results)
    assert names == [f"race-{n:02d}" for n in range(1, 13)]


def test_groups_of_one_method_coexist_under_different_names(
    service: ProvisioningService,
) -> None:
    """Groups name no unit: only their names must differ (a unit/method clash check once
    compared NULL physical ids and refused every second group)."""
    _group(service)
    other = Allocation(AllocationPolicy.POOL, pool_pattern="line-04-right-welding-{01..03}")
    second = service.enrollments.create_symmetric_group("line-04", other, actor=ACTOR)
    assert second.enrollment.name == "line-04"
    with pytest.raises(EnrollmentExists):
        service.enrollments.create_symmetric_group("line-04", other, actor=ACTOR)

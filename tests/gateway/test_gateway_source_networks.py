"""The unit's policy `allowed_networks` on the MQTT gateway: the peer address of the TLS
connection is passed to device authentication, so a unit proven by its certificate but
connecting from outside its networks gets CONNACK 0x87 (3.1.1: 5), audited; from inside,
it connects. Real TLS over loopback with paho-mqtt (the peer is 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from devicetrust.deviceauth import DeviceAuthService, device_verifier
from devicetrust.deviceauth.policy_limits import PolicyLimits
from devicetrust.domain import FixedClock
from devicetrust.gateway import GatewayThread
from devicetrust.pki import PkiService
from devicetrust.policy import PolicyService
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow
from devicetrust.vault import Vault

from .gateway_fixtures import Device, PahoDevice, Tls, paho_device

NAME = "line-03-left-welding-12"
VERSIONS = [pytest.param(True, id="mqttv5"), pytest.param(False, id="mqttv311")]


@pytest.fixture
def policy(db: Database, clock: FixedClock) -> PolicyService:
    return PolicyService(db, clock)


@pytest.fixture
def auth(db: Database, clock: FixedClock, ca_vault: Vault, pki: PkiService,
         policy: PolicyService) -> DeviceAuthService:
    """The gateway's authentication with the unit's policy, as `Platform` composes it."""
    return DeviceAuthService(db, clock, ca_vault, cert_verifier=device_verifier(pki, clock),
                             limits_for=PolicyLimits(policy, clock, ttl=timedelta(0)))



def _connect(tls: Tls, gateway: GatewayThread, opened: list[PahoDevice], device: Device,
             v5: bool) -> int:
    paho = paho_device(tls, v5=v5, client_id=device.physical_id, device=device)
    opened.append(paho)
    return paho.connect(gateway.port)


@pytest.mark.parametrize("v5", VERSIONS)
def test_a_unit_outside_its_networks_is_refused_and_audited(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice], db: Database,
    make_device: Callable[..., Device], policy: PolicyService, v5: bool,
) -> None:
    device = make_device(NAME)
    policy.set(f"device:{device.physical_id}", {"allowed_networks": ["10.3.0.0/16"]},
               actor="operator:test")

    assert _connect(tls, gateway, paho_devices, device, v5) == 0x87  # 3.1.1: return code 5
    with db.read() as session:
        entry = session.execute(
            select(AuditEntryRow).where(AuditEntryRow.action == "device.auth_refused")
        ).scalar_one()
    assert entry.details["code"] == "auth.network_not_allowed"
    assert entry.details["source"] == "127.0.0.1"


@pytest.mark.parametrize("v5", VERSIONS)
def test_a_unit_inside_its_networks_connects(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], policy: PolicyService, v5: bool,
) -> None:
    device = make_device(NAME)
    policy.set(f"device:{device.physical_id}", {"allowed_networks": ["127.0.0.0/8"]},
               actor="operator:test")

    assert _connect(tls, gateway, paho_devices, device, v5) == 0


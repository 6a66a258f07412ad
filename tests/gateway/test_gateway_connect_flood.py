"""A flood of CONNECTs with wrong credentials from one address: the gateway passes the peer
address to device authentication, whose failure limiter (as `Platform` composes it) refuses
that address before any work once its budget is spent. Real TLS with paho-mqtt."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from devicetrust.deviceauth import DeviceAuthService, device_verifier
from devicetrust.domain import FixedClock
from devicetrust.gateway import GatewayThread
from devicetrust.pki import PkiService
from devicetrust.provisioning.ratelimit import FailureLimiter
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow
from devicetrust.vault import Vault

from .gateway_fixtures import Device, PahoDevice, Tls, paho_device

NAME = "line-03-left-welding-12"
VERSIONS = [pytest.param(True, id="mqttv5"), pytest.param(False, id="mqttv311")]


@pytest.fixture
def auth(db: Database, clock: FixedClock, ca_vault: Vault, pki: PkiService) -> DeviceAuthService:
    """Failed authentications limited per source address (a small burst keeps it short)."""
    return DeviceAuthService(db, clock, ca_vault, cert_verifier=device_verifier(pki, clock),
                             failure_limiter=FailureLimiter(clock, burst=3, refill_per_minute=1))


def _audited(db: Database) -> int:
    with db.read() as session:
        return int(session.execute(select(func.count()).select_from(AuditEntryRow)).scalar_one())


@pytest.mark.parametrize("v5", VERSIONS)
def test_a_flood_of_bad_credentials_is_rate_limited_per_source(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice], db: Database,
    make_device: Callable[..., Device], v5: bool,
) -> None:
    """Three wrong tokens from 127.0.0.1 are refused and audited; from then on that address
    is refused before any work (MQTT 5: 0x9F connection rate exceeded; 3.1.1: return code
    3), even with a valid certificate, and nothing more is written."""
    device = make_device(NAME)
    for _ in range(3):
        guessing = paho_device(tls, v5=v5, client_id=device.physical_id,
                               username="hmac-token", password="v=dt1&id=" + device.physical_id)
        paho_devices.append(guessing)
        assert guessing.connect(gateway.port) == 0x86
    audited = _audited(db)

    real = paho_device(tls, v5=v5, client_id=device.physical_id, device=device)
    paho_devices.append(real)
    assert real.connect(gateway.port) == (0x9F if v5 else 0x88)  # paho maps 3 to 0x88
    assert _audited(db) == audited

"""The per-unit message-rate quota: a token bucket per physical id (pure), and at the gateway
with paho-mqtt -- MQTT 5 gets PUBACK 0x97 (a PUBACK cannot say 0x96) and nothing is stored,
then DISCONNECT 0x96 if it keeps going; 3.1.1 is disconnected at once; the refusals are
counted (0x96) and audited through the refusal auditor; reconnecting does not refill the
bucket."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from devicetrust.domain import FixedClock, PhysicalId
from devicetrust.gateway import GatewayConfig, GatewayThread
from devicetrust.gateway.codec import ReasonCode
from devicetrust.gateway.live_revocation import LiveDevices
from devicetrust.gateway.message_quota import MessageQuota
from devicetrust.gateway.refusal_audit import ACTION, RefusalAuditor
from devicetrust.ingest.store import MessageStore
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow

from .gateway_fixtures import AUDIENCE, Device, PahoDevice, Tls, paho_device

UNIT = PhysicalId("6f1c1f4e-3c55-4d7e-9d1e-0f9f3c2b1a00")
OTHER = PhysicalId("0b7d4a52-31c4-4e0e-8f5c-6a1d2e3f4a5b")
BURST = 3
NAME = "line-03-left-welding-12"


def test_a_bucket_spends_its_burst_then_refills_at_the_rate() -> None:
    quota = MessageQuota(rate=2.0, burst=BURST)
    assert [quota.take(UNIT, 10.0) for _ in range(4)] == [True, True, True, False]
    assert quota.take(OTHER, 10.0)  # one bucket per unit
    assert not quota.take(UNIT, 10.4)  # 0.8 token
    assert quota.take(UNIT, 10.5)  # 1 token after 0.5 s at 2/s
    assert [quota.take(UNIT, 100.0) for _ in range(4)] == [True, True, True, False]  # capped


def test_full_buckets_are_pruned_past_the_bound() -> None:
    quota = MessageQuota(rate=1.0, burst=2, max_units=2)
    quota.take(UNIT, 0.0)
    quota.take(OTHER, 0.0)
    third = PhysicalId("7c3e9b1a-8f2d-4e6a-9b0c-1d2e3f4a5b6c")
    quota.take(third, 5.0)  # the other two are full again by now: forgotten
    assert len(quota) == 1


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_bad_quotas_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        MessageQuota(rate=rate, burst=burst)
    with pytest.raises(ValueError):
        GatewayConfig(message_rate=rate, message_burst=burst)


# ---- at the gateway -------------------------------------------------------------------------


@pytest.fixture
def gateway_config() -> GatewayConfig:
    # One token per 1,000 s: no refill during the test, whatever the machine's speed.
    return GatewayConfig(port=0, token_audience=AUDIENCE, connect_timeout=2.0,
                         message_rate=0.001, message_burst=BURST)


@pytest.fixture
def auditor(db: Database, clock: FixedClock) -> RefusalAuditor:
    return RefusalAuditor(db, clock)


@pytest.fixture
def hooks(auditor: RefusalAuditor) -> LiveDevices:  # the hooks `serve` gives the gateway
    return LiveDevices(on_refused=auditor.refused)


def _connect(tls: Tls, port: int, device: Device, *, v5: bool,
             opened: list[PahoDevice]) -> PahoDevice:
    paho = paho_device(tls, v5=v5, client_id=device.physical_id, device=device)
    opened.append(paho)
    assert paho.connect(port) == 0
    return paho


def test_mqtt5_over_the_quota_gets_puback_0x97_and_is_audited(
    tls: Tls, gateway: GatewayThread, make_device: Callable[..., Device],
    paho_devices: list[PahoDevice], message_store: MessageStore, auditor: RefusalAuditor,
    db: Database,
) -> None:
    device = make_device(NAME)
    topic = f"devices/{device.physical_id}/telemetry"
    paho = _connect(tls, gateway.port, device, v5=True, opened=paho_devices)
    codes = [paho.publish(topic, {"seq": n}) for n in range(BURST + 1)]
    assert codes == [0] * BURST + [ReasonCode.QUOTA_EXCEEDED]
    assert paho.disconnects == []  # told, not dropped
    stored = message_store.telemetry_of(device.physical_id)
    assert sorted(m.payload["seq"] for m in stored) == list(range(BURST))
    assert gateway.counters()['devicetrust_gateway_refusals_total{reason_code="0x96"}'] == 1

    # Reconnecting does not refill the unit's bucket.
    paho.close()
    again = _connect(tls, gateway.port, device, v5=True, opened=paho_devices)
    assert again.publish(topic, {"seq": 99}) == ReasonCode.QUOTA_EXCEEDED

    assert auditor.flush() == 1  # two refusals within the window: one entry
    with db.read() as session:
        entry = session.execute(
            select(AuditEntryRow).where(AuditEntryRow.action == ACTION)).scalar_one()
    assert entry.subject == device.physical_id
    assert entry.details["reason_code"] == 0x96
    assert entry.details["attempts"] == 2


def test_mqtt5_device_that_ignores_0x96_is_disconnected(
    tls: Tls, gateway: GatewayThread, make_device: Callable[..., Device],
    paho_devices: list[PahoDevice],
) -> None:
    device = make_device(NAME)
    topic = f"devices/{device.physical_id}/telemetry"
    paho = _connect(tls, gateway.port, device, v5=True, opened=paho_devices)
    for n in range(BURST):
        assert paho.publish(topic, {"seq": n}) == 0
    for n in range(BURST):  # QoS 0: dropped, counted; the burst-th one in a row closes
        paho.publish(topic, {"over": n}, qos=0)
    paho.wait(lambda: bool(paho.disconnects))
    assert paho.disconnects == [ReasonCode.MESSAGE_RATE_TOO_HIGH]
    assert gateway.counters()['devicetrust_gateway_refusals_total{reason_code="0x96"}'] == BURST


def test_mqtt311_over_the_quota_is_disconnected(
    tls: Tls, gateway: GatewayThread, make_device: Callable[..., Device],
    paho_devices: list[PahoDevice], message_store: MessageStore,
) -> None:
    device = make_device(NAME)
    topic = f"devices/{device.physical_id}/telemetry"
    paho = _connect(tls, gateway.port, device, v5=False, opened=paho_devices)
    for n in range(BURST):
        assert paho.publish(topic, {"seq": n}) == 0
    assert paho.publish(topic, {"seq": BURST}) is None  # no PUBACK: the connection closed
    assert paho.disconnects
    assert len(message_store.telemetry_of(device.physical_id)) == BURST
    assert gateway.counters()['devicetrust_gateway_refusals_total{reason_code="0x96"}'] == 1

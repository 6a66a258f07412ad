"""Payload encodings through the gateway, end to end: paho-mqtt (MQTT 5) publishes CBOR and
MessagePack with their Content Type and the store keeps the JSON document; a malformed,
mistyped or schema-breaking payload gets PUBACK 0x99 (Payload format invalid), is counted
by reason and stored nowhere; a 3.1.1 device's refused message is acknowledged plainly."""

from __future__ import annotations

import json
from collections.abc import Callable

import cbor2
import msgpack
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devicetrust.gateway import GatewayThread
from devicetrust.ingest.store import MessageStore

from .gateway_fixtures import (
    Device,
    PahoDevice,
    Tls,
    paho_device,
)

NAME = "line-03-left-welding-12"
PAYLOAD_FORMAT_INVALID = 0x99


def connected(tls: Tls, gateway: GatewayThread, opened: list[PahoDevice], device: Device, *,
              v5: bool = True) -> PahoDevice:
    paho = paho_device(tls, v5=v5, client_id=device.physical_id, device=device)
    opened.append(paho)
    assert paho.connect(gateway.port) == 0
    return paho


def publish_raw(paho: PahoDevice, topic: str, payload: bytes,
                content_type: str | None = None) -> int | None:
    """QoS 1 publish of raw bytes; the PUBACK reason code (None if the connection closed)."""
    props = None
    if content_type is not None:
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = content_type
    info = paho.client.publish(topic, payload, qos=1, properties=props)
    paho.wait(lambda: info.mid in paho.pubacks or bool(paho.disconnects))
    return paho.pubacks.get(info.mid)


def refused_count(gateway: GatewayThread, reason: str) -> int:
    key = f'devicetrust_gateway_messages_refused_total{{reason="{reason}"}}'
    return gateway.counters().get(key, 0)


@pytest.mark.parametrize(
    ("content_type", "encode"),
    [
        pytest.param("application/cbor", cbor2.dumps, id="cbor"),
        pytest.param("application/msgpack", msgpack.packb, id="msgpack"),
        pytest.param("application/x-msgpack", msgpack.packb, id="x-msgpack"),
        pytest.param("application/json", lambda d: json.dumps(d).encode(), id="json"),
    ],
)
def test_binary_payloads_are_stored_as_json(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], message_store: MessageStore,
    content_type: str, encode: Callable[[object], bytes],
) -> None:
    device = make_device(NAME)
    paho = connected(tls, gateway, paho_devices, device)
    topic = f"devices/{device.physical_id}"
    telemetry = {"ts": 1767225600.5, "torque": [1.5, -2.25, 0], "rpm": 1200}
    diagnostics = {"ts": "2026-01-01T00:00:00+00:00", "parts_per_hour": 41, "ok": True}
    assert publish_raw(paho, f"{topic}/telemetry", encode(telemetry), content_type) == 0
    assert publish_raw(paho, f"{topic}/diagnostics", encode(diagnostics), content_type) == 0
    [stored] = message_store.telemetry_of(device.physical_id)
    assert stored.payload == telemetry
    [report] = message_store.diagnostics_of(NAME)
    assert report.payload == diagnostics


@pytest.mark.parametrize(
    ("payload", "content_type", "reason"),
    [
        pytest.param(b"\xa1\x61", "application/cbor", "ingest.payload_malformed",
                     id="truncated-cbor"),
        pytest.param(cbor2.dumps({"ts": cbor2.CBORTag(1, 0)}), "application/cbor",
                     "ingest.payload_unsupported_value", id="cbor-tag"),
        pytest.param(msgpack.packb({"x": msgpack.ExtType(7, b"obj")}), "application/msgpack",
                     "ingest.payload_unsupported_value", id="msgpack-ext"),
        pytest.param(cbor2.dumps({"rpm": 1}), "text/plain", "ingest.unsupported_content_type",
                     id="unknown-content-type"),
        pytest.param(b'{"rpm": 1', None, "ingest.payload_not_json", id="broken-json"),
        pytest.param(cbor2.dumps({"torque": list(range(33))}), "application/cbor",
                     "ingest.schema_violation", id="torque-over-32"),
        pytest.param(b"[" * 4000, None, "ingest.payload_too_deep", id="nesting-bomb"),
    ],
)
def test_a_refused_payload_gets_0x99_and_is_counted(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], message_store: MessageStore,
    payload: bytes, content_type: str | None, reason: str,
) -> None:
    device = make_device(NAME)
    paho = connected(tls, gateway, paho_devices, device)
    topic = f"devices/{device.physical_id}/telemetry"
    assert publish_raw(paho, topic, payload, content_type) == PAYLOAD_FORMAT_INVALID
    assert refused_count(gateway, reason) == 1
    # The session goes on: the next good message is stored, the bad one never was.
    assert publish_raw(paho, topic, cbor2.dumps({"rpm": 900}), "application/cbor") == 0
    assert [m.payload for m in message_store.telemetry_of(device.physical_id)] == [{"rpm": 900}]
    assert not paho.disconnects


def test_mqtt311_refused_payload_is_acknowledged_and_counted(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], message_store: MessageStore,
) -> None:
    device = make_device(NAME)
    paho = connected(tls, gateway, paho_devices, device, v5=False)
    topic = f"devices/{device.physical_id}/telemetry"
    # 3.1.1 has no Content Type: the payload is JSON, and a PUBACK carries no reason.
    assert publish_raw(paho, topic, cbor2.dumps({"rpm": 1})) == 0
    assert refused_count(gateway, "ingest.payload_not_json") == 1
    assert message_store.telemetry_of(device.physical_id) == []

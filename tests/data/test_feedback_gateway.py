"""Feedback end to end through the embedded data plane of `devicetrust serve`
(`runtime.data_plane.EmbeddedDataPlane`): sent by the API to a logical name, received by the
unit that holds it on `devices/{id}/feedback` (paho-mqtt, MQTT 5, mTLS), acknowledged and
reported `delivered`; sent while the unit is offline, delivered when it connects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from fastapi.testclient import TestClient

from devicetrust.api import create_app
from devicetrust.auth import Scope
from devicetrust.identity import UnitSpec
from devicetrust.pki import CaRole, Profile
from devicetrust.runtime import Platform
from devicetrust.runtime.data_plane import EmbeddedDataPlane
from tests.gateway.embedded import gateway_platform, running_plane
from tests.gateway.gateway_fixtures import Device, PahoDevice, Tls, paho_device
from tests.ingest.clients import eventually
from tests.pki.certs import make_csr

ACTOR = "operator:test"
NAME = "line-03-left-welding-12"


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    yield from gateway_platform(tmp_path)


@pytest.fixture
def plane(platform: Platform) -> Iterator[EmbeddedDataPlane]:
    yield from running_plane(platform)


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    token = platform.api_keys.create("ops", [Scope.DATA_READ, Scope.DATA_WRITE], actor=ACTOR)[1]
    with TestClient(create_app(platform)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


@pytest.fixture
def device(platform: Platform, tmp_path: Path) -> Device:
    unit = platform.identity.register(UnitSpec("arm-r7", {}), actor="factory")
    platform.identity.create_logical(NAME, actor=ACTOR)
    platform.identity.bind(NAME, unit.physical_id, actor=ACTOR)
    key = ec.generate_private_key(ec.SECP256R1())
    issued = platform.pki.issue_from_csr(
        make_csr(key), unit.physical_id, Profile.DEVICE, actor=ACTOR
    )
    cert, key_file = tmp_path / "device.pem", tmp_path / "device.key"
    cert.write_bytes(issued.certificate.public_bytes(Encoding.PEM))
    key_file.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return Device(unit.physical_id, NAME, cert, key_file, issued)


def _subscribed(platform: Platform, tmp_path: Path, device: Device, port: int) -> PahoDevice:
    trust = tmp_path / "trust.pem"
    trust.write_text(platform.pki.chain_pem(CaRole.ISSUING))
    paho = paho_device(Tls(trust, trust, trust, trust), v5=True,
                       client_id=device.physical_id, device=device)
    assert paho.connect(port) == 0
    assert paho.subscribe(f"devices/{device.physical_id}/feedback", qos=1) == [1]
    return paho


def _received(paho: PahoDevice, topic: str) -> list[Any]:
    paho.wait(lambda: any(m.topic == topic for m in paho.messages))
    return [json.loads(m.payload) for m in paho.messages if m.topic == topic]


def _status_becomes(api: TestClient, feedback_id: str, status: str) -> dict[str, Any]:
    def current() -> dict[str, Any]:
        shown = api.get(f"/v1/feedback/{feedback_id}")
        assert shown.status_code == 200, shown.text
        body: dict[str, Any] = shown.json()
        return body

    eventually(lambda: current()["status"] == status)
    return current()


def test_feedback_sent_by_the_api_reaches_the_device_and_is_delivered(
    platform: Platform, plane: EmbeddedDataPlane, api: TestClient, device: Device,
    tmp_path: Path,
) -> None:
    assert plane.port is not None
    paho = _subscribed(platform, tmp_path, device, plane.port)
    try:
        sent = api.post(f"/v1/feedback/{NAME}", json={"payload": {"speed": 0.8}})
        assert sent.status_code == 201, sent.text
        topic = f"devices/{device.physical_id}/feedback"
        assert _received(paho, topic) == [{"speed": 0.8}]
        shown = _status_becomes(api, sent.json()["feedback_id"], "delivered")
        assert shown["physical_id"] == device.physical_id
        assert shown["published_at"] is not None
    finally:
        paho.close()


def test_feedback_sent_while_offline_is_delivered_on_connect(
    platform: Platform, plane: EmbeddedDataPlane, api: TestClient, device: Device,
    tmp_path: Path,
) -> None:
    assert plane.port is not None
    first = api.post(f"/v1/feedback/{NAME}", json={"payload": {"n": 1}, "ttl": "1h"}).json()
    second = api.post(f"/v1/feedback/{NAME}", json={"payload": {"n": 2}}).json()
    listed = api.get("/v1/feedback", params={"logical_name": NAME}).json()["items"]
    assert [f["status"] for f in listed] == ["pending", "pending"]  # nobody to send to

    paho = _subscribed(platform, tmp_path, device, plane.port)
    try:
        topic = f"devices/{device.physical_id}/feedback"
        paho.wait(lambda: sum(m.topic == topic for m in paho.messages) >= 2)
        assert _received(paho, topic) == [{"n": 1}, {"n": 2}]  # oldest first
        for sent in (first, second):
            shown = _status_becomes(api, sent["feedback_id"], "delivered")
            assert shown["physical_id"] == device.physical_id
    finally:
        paho.close()

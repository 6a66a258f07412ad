"""The gateway against paho-mqtt (MQTT 5 and 3.1.1) over TLS 1.3 with client certificates and
HMAC tokens: messages stored before they are acknowledged, topics limited to the device's
own, identities from the credential only, refusals with their reason codes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devicetrust.deviceauth import DeviceAuthService, encode_token, key_id_of
from devicetrust.domain import FixedClock
from devicetrust.gateway import GatewayThread
from devicetrust.ingest.store import MessageStore
from devicetrust.pki import PkiService

from .gateway_fixtures import (
    ACTOR,
    AUDIENCE,
    Device,
    PahoDevice,
    Tls,
    paho_device,
)

NAME = "line-03-left-welding-12"
VERSIONS = [pytest.param(True, id="mqttv5"), pytest.param(False, id="mqttv311")]


def connected(tls: Tls, gateway: GatewayThread, opened: list[PahoDevice], device: Device, *,
              v5: bool) -> PahoDevice:
    paho = paho_device(tls, v5=v5, client_id=device.physical_id, device=device)
    opened.append(paho)
    assert paho.connect(gateway.port) == 0
    return paho


@pytest.mark.parametrize("v5", VERSIONS)
def test_qos1_publish_is_stored_then_acknowledged(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], message_store: MessageStore, v5: bool,
) -> None:
    device = make_device(NAME)
    paho = connected(tls, gateway, paho_devices, device, v5=v5)
    topic = f"devices/{device.physical_id}"
    assert paho.publish(f"{topic}/telemetry", {"torque": [1.5, 2.25]}) == 0
    # The PUBACK came back: the message is in the database already, under its unit.
    [telemetry] = message_store.telemetry_of(device.physical_id)
    assert telemetry.payload == {"torque": [1.5, 2.25]}
    assert paho.publish(f"{topic}/diagnostics", {"parts_per_hour": 42}) == 0
    [diagnostics] = message_store.diagnostics_of(NAME)
    assert (diagnostics.physical_id, diagnostics.payload) == (
        device.physical_id, {"parts_per_hour": 42})


@pytest.mark.parametrize("v5", VERSIONS)
def test_publish_to_another_devices_topic_is_refused(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], message_store: MessageStore, v5: bool,
) -> None:
    device, other = make_device(NAME), make_device("line-03-right-welding-13")
    paho = connected(tls, gateway, paho_devices, device, v5=v5)
    result = paho.publish(f"devices/{other.physical_id}/telemetry", {"torque": [9]})
    if v5:
        assert result == 0x87  # PUBACK Not authorized; the connection stays
        assert paho.publish(f"devices/{device.physical_id}/telemetry", {"ok": 1}) == 0
    else:
        assert result is None  # 3.1.1 has no negative PUBACK: the gateway disconnects
        paho.wait(lambda: bool(paho.disconnects))
    assert message_store.telemetry_of(other.physical_id) == []


@pytest.mark.parametrize("v5", VERSIONS)
@pytest.mark.parametrize("topic_filter", ["#", "devices/+/feedback", "$SYS/#",
                                          "$share/g/devices/{pid}/feedback",
                                          "devices/{other}/feedback", "devices/{pid}/#"])
def test_subscriptions_outside_the_own_feedback_topic_are_refused(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], v5: bool, topic_filter: str,
) -> None:
    device, other = make_device(NAME), make_device()
    paho = connected(tls, gateway, paho_devices, device, v5=v5)
    asked = topic_filter.format(pid=device.physical_id, other=other.physical_id)
    assert paho.subscribe(asked) == [0x87 if v5 else 0x80]
    assert paho.subscribe(f"devices/{device.physical_id}/feedback") == [1]


@pytest.mark.parametrize("v5", VERSIONS)
def test_client_id_must_be_the_physical_id(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], v5: bool,
) -> None:
    device, other = make_device(NAME), make_device()
    paho = paho_device(tls, v5=v5, client_id=other.physical_id, device=device)
    paho_devices.append(paho)
    assert paho.connect(gateway.port) == 0x85  # 3.1.1: return code 2


@pytest.mark.parametrize("v5", VERSIONS)
def test_no_credentials_and_bad_credentials_are_refused(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], v5: bool,
) -> None:
    device = make_device(NAME)
    anonymous = paho_device(tls, v5=v5, client_id=device.physical_id)
    paho_devices.append(anonymous)
    assert anonymous.connect(gateway.port) == 0x87  # 3.1.1: return code 5
    guessing = paho_device(tls, v5=v5, client_id=device.physical_id, username="hmac-token",
                           password="v=dt1&id=" + device.physical_id)
    paho_devices.append(guessing)
    assert guessing.connect(gateway.port) == 0x86  # 3.1.1: return code 4


@pytest.mark.parametrize("v5", VERSIONS)
def test_revoked_certificate_is_refused(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], pki: PkiService, v5: bool,
) -> None:
    device = make_device(NAME)
    pki.revoke(device.issued.serial, "keyCompromise", actor=ACTOR)
    paho = paho_device(tls, v5=v5, client_id=device.physical_id, device=device)
    paho_devices.append(paho)
    assert paho.connect(gateway.port) == 0x87


@pytest.mark.parametrize("v5", VERSIONS)
def test_hmac_token_in_the_password(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], auth: DeviceAuthService, clock: FixedClock,
    message_store: MessageStore, v5: bool,
) -> None:
    device = make_device(NAME)
    with auth.token_keys.rotate(device.physical_id, actor=ACTOR) as shown:
        token = encode_token(shown.key, device.physical_id, shown.version.version, AUDIENCE,
                             clock.now() + timedelta(minutes=10))
    paho = paho_device(tls, v5=v5, client_id=device.physical_id, username="hmac-token",
                       password=token)
    paho_devices.append(paho)
    assert paho.connect(gateway.port) == 0
    assert paho.publish(f"devices/{device.physical_id}/telemetry", {"rpm": 1200}) == 0
    assert [m.payload for m in message_store.telemetry_of(device.physical_id)] == [
        {"rpm": 1200}]


def test_device_message_id_makes_a_redelivery_idempotent(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], message_store: MessageStore,
) -> None:
    device = make_device(NAME)
    paho = connected(tls, gateway, paho_devices, device, v5=True)
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = ("msg-id", "report-0001")
    topic = f"devices/{device.physical_id}/telemetry"
    assert paho.publish(topic, {"n": 1}, properties=props) == 0
    assert paho.publish(topic, {"n": 1}, properties=props) == 0  # resent after a lost ack
    assert len(message_store.telemetry_of(device.physical_id)) == 1


@pytest.mark.parametrize("v5", VERSIONS)
def test_jwt_in_the_password(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], auth: DeviceAuthService, clock: FixedClock,
    message_store: MessageStore, v5: bool,
) -> None:
    device = make_device(NAME)
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    auth.public_keys.register(device.physical_id, public, actor=ACTOR)
    now = int(clock.now().timestamp())
    claims = {"sub": device.physical_id, "aud": AUDIENCE, "iat": now, "exp": now + 600,
              "jti": uuid.uuid4().hex}
    token = jwt.encode(claims, key, algorithm="ES256",
                       headers={"kid": key_id_of(key.public_key())})
    paho = paho_device(tls, v5=v5, client_id=device.physical_id, username="jwt",
                       password=token)
    paho_devices.append(paho)
    assert paho.connect(gateway.port) == 0
    assert paho.publish(f"devices/{device.physical_id}/diagnostics", {"ok": True}) == 0
    assert [m.payload for m in message_store.diagnostics_of(NAME)] == [{"ok": True}]
    # The same token again: its jti is spent, the device-auth service refuses the replay.
    replay = paho_device(tls, v5=v5, client_id=device.physical_id, username="jwt",
                         password=token)
    paho_devices.append(replay)
    assert replay.connect(gateway.port) == 0x86

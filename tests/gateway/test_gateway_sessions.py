"""Sessions through paho-mqtt: takeover by the same identity only, kick (live revocation),
credential expiry, feedback to a subscribed device, persistent sessions, will messages."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devicetrust.deviceauth import DeviceAuthService, encode_token
from devicetrust.domain import FixedClock
from devicetrust.gateway import FeedbackState, GatewayThread
from devicetrust.gateway.codec import ReasonCode
from devicetrust.ingest.store import MessageStore
from devicetrust.pki import PkiService

from .gateway_fixtures import (
    ACTOR,
    AUDIENCE,
    Device,
    PahoDevice,
    RecordingHooks,
    Tls,
    paho_device,
)

NAME = "line-03-left-welding-12"
VERSIONS = [pytest.param(True, id="mqttv5"), pytest.param(False, id="mqttv311")]


def open_device(tls: Tls, gateway: GatewayThread, opened: list[PahoDevice], device: Device, *,
                v5: bool = True, client_id: str | None = None, clean_start: bool = True,
                properties: Properties | None = None) -> tuple[PahoDevice, int]:
    paho = paho_device(tls, v5=v5, client_id=device.physical_id if client_id is None
                       else client_id, device=device)
    opened.append(paho)
    return paho, paho.connect(gateway.port, clean_start=clean_start, properties=properties)


@pytest.mark.parametrize("v5", VERSIONS)
def test_takeover_by_the_same_identity_closes_the_old_session(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], message_store: MessageStore, v5: bool,
) -> None:
    device = make_device(NAME)
    old, code = open_device(tls, gateway, paho_devices, device, v5=v5)
    assert code == 0
    new, code = open_device(tls, gateway, paho_devices, device, v5=v5)
    assert code == 0
    old.wait(lambda: bool(old.disconnects))
    if v5:
        assert old.disconnects == [ReasonCode.SESSION_TAKEN_OVER]
    assert new.publish(f"devices/{device.physical_id}/telemetry", {"after": "takeover"}) == 0
    assert gateway.is_connected(device.physical_id)
    assert gateway.counters()["devicetrust_gateway_takeovers_total"] == 1


@pytest.mark.parametrize("v5", VERSIONS)
def test_another_identity_cannot_take_over(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], hooks: RecordingHooks, v5: bool,
) -> None:
    victim, intruder = make_device(NAME), make_device()
    live, code = open_device(tls, gateway, paho_devices, victim, v5=v5)
    assert code == 0
    # A valid certificate of another unit, claiming the victim's client id.
    _, code = open_device(tls, gateway, paho_devices, intruder, v5=v5,
                          client_id=victim.physical_id)
    assert code == 0x85
    # No credential at all, claiming the victim's client id.
    anonymous = paho_device(tls, v5=v5, client_id=victim.physical_id)
    paho_devices.append(anonymous)
    assert anonymous.connect(gateway.port) == 0x87
    assert live.disconnects == []
    assert live.publish(f"devices/{victim.physical_id}/telemetry", {"still": "here"}) == 0
    # The attempt is reported for the audit log, under the identity that made it.
    assert ("refused", intruder.physical_id,
            (0x85, f"client id {victim.physical_id!r}")) in hooks.events


@pytest.mark.parametrize("v5", VERSIONS)
def test_kick_closes_the_live_session(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], v5: bool,
) -> None:
    device = make_device(NAME)
    paho, _ = open_device(tls, gateway, paho_devices, device, v5=v5)
    started = time.perf_counter()
    assert gateway.kick(device.physical_id, ReasonCode.ADMINISTRATIVE_ACTION)
    paho.wait(lambda: bool(paho.disconnects))
    elapsed = time.perf_counter() - started
    print(f"kick to client-side disconnect: {elapsed * 1000:.1f} ms")  # measured, not bound
    if v5:
        assert paho.disconnects == [ReasonCode.ADMINISTRATIVE_ACTION]
    assert not gateway.is_connected(device.physical_id)
    assert not gateway.kick(device.physical_id)  # nothing left to kick


def test_session_closes_when_its_token_expires(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], auth: DeviceAuthService, clock: FixedClock,
) -> None:
    device = make_device(NAME)
    with auth.token_keys.rotate(device.physical_id, actor=ACTOR) as shown:
        token = encode_token(shown.key, device.physical_id, shown.version.version, AUDIENCE,
                             clock.now() + timedelta(seconds=2))
    paho = paho_device(tls, v5=True, client_id=device.physical_id, username="hmac-token",
                       password=token)
    paho_devices.append(paho)
    assert paho.connect(gateway.port) == 0
    paho.wait(lambda: bool(paho.disconnects))
    assert paho.disconnects == [ReasonCode.MAXIMUM_CONNECT_TIME]


@pytest.mark.parametrize("v5", VERSIONS)
def test_feedback_reaches_a_subscribed_device(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], v5: bool,
) -> None:
    device = make_device(NAME)
    assert gateway.publish_feedback(device.physical_id, b"{}") is FeedbackState.NO_SESSION
    paho, _ = open_device(tls, gateway, paho_devices, device, v5=v5)
    topic = f"devices/{device.physical_id}/feedback"
    assert gateway.publish_feedback(device.physical_id, b'{"early": 1}') is (
        FeedbackState.QUEUED)  # connected, not yet subscribed
    assert paho.subscribe(topic) == [1]
    assert gateway.publish_feedback(device.physical_id, b'{"speed": 0.8}') is (
        FeedbackState.SENT)
    paho.wait(lambda: len(paho.messages) == 2)
    assert [(m.topic, m.qos, m.payload) for m in paho.messages] == [
        (topic, 1, b'{"early": 1}'), (topic, 1, b'{"speed": 0.8}')]
    # paho acknowledged both (PUBACK): nothing is left in flight.
    deadline = time.monotonic() + 20
    while gateway.counters()["devicetrust_gateway_feedback_acked_total"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_persistent_session_keeps_the_subscription_and_queued_feedback(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device],
) -> None:
    device = make_device(NAME)
    connect = Properties(PacketTypes.CONNECT)
    connect.SessionExpiryInterval = 300
    first, code = open_device(tls, gateway, paho_devices, device, clean_start=False,
                              properties=connect)
    assert code == 0
    assert first.subscribe(f"devices/{device.physical_id}/feedback") == [1]
    first.close()
    deadline = time.monotonic() + 20
    while gateway.is_connected(device.physical_id):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert gateway.publish_feedback(device.physical_id, b'{"while": "away"}') is (
        FeedbackState.QUEUED)
    again, code = open_device(tls, gateway, paho_devices, device, clean_start=False,
                              properties=connect)
    assert code == 0
    again.wait(lambda: bool(again.messages))  # no new SUBSCRIBE: the session kept it
    assert again.messages[0].payload == b'{"while": "away"}'


def test_will_is_stored_when_the_connection_drops(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], message_store: MessageStore,
) -> None:
    device = make_device(NAME)
    paho = paho_device(tls, v5=True, client_id=device.physical_id, device=device)
    paho_devices.append(paho)
    paho.client.will_set(f"devices/{device.physical_id}/diagnostics", b'{"state": "lost"}')
    assert paho.connect(gateway.port) == 0
    gateway.kick(device.physical_id)  # a kick does not store it...
    paho.wait(lambda: bool(paho.disconnects))
    assert message_store.diagnostics_of(NAME) == []
    again = paho_device(tls, v5=True, client_id=device.physical_id, device=device)
    paho_devices.append(again)
    again.client.will_set(f"devices/{device.physical_id}/diagnostics", b'{"state": "lost"}')
    assert again.connect(gateway.port) == 0
    again.client.socket().close()  # ... a dropped connection does
    deadline = time.monotonic() + 20
    while not message_store.diagnostics_of(NAME):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert [m.payload for m in message_store.diagnostics_of(NAME)] == [{"state": "lost"}]


def test_will_to_a_foreign_topic_is_refused(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device],
) -> None:
    device, other = make_device(NAME), make_device()
    paho = paho_device(tls, v5=True, client_id=device.physical_id, device=device)
    paho_devices.append(paho)
    paho.client.will_set(f"devices/{other.physical_id}/diagnostics", b"{}")
    assert paho.connect(gateway.port) == 0x87


@pytest.mark.parametrize("v5", VERSIONS)
def test_revoked_device_is_kicked_and_cannot_reconnect(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], pki: PkiService, v5: bool,
) -> None:
    """The revocation path the platform wires: revoke the certificate, kick the session."""
    device = make_device(NAME)
    live, code = open_device(tls, gateway, paho_devices, device, v5=v5)
    assert code == 0
    pki.revoke(device.issued.serial, "keyCompromise", actor=ACTOR)
    assert gateway.kick(device.physical_id, ReasonCode.NOT_AUTHORIZED)
    live.wait(lambda: bool(live.disconnects))
    if v5:
        assert live.disconnects == [ReasonCode.NOT_AUTHORIZED]
    _, code = open_device(tls, gateway, paho_devices, device, v5=v5)
    assert code == 0x87
    assert not gateway.is_connected(device.physical_id)

"""Persistent sessions survive a restart of the embedded data plane (`devicetrust serve`):
the feedback subscription and the QoS 1 feedback sent but not acknowledged come back; the
device, reconnecting without a new SUBSCRIBE, receives it and its PUBACK marks it
delivered. A clean start, or the expiry, forgets the session."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as PahoProperties

from devicetrust.domain import FixedClock, PhysicalId
from devicetrust.domain.clock import SystemClock
from devicetrust.gateway.codec import (
    Connack,
    Connect,
    Decoder,
    Packet,
    Properties,
    ProtocolVersion,
    Publish,
    QoS,
    ReasonCode,
    Suback,
    Subscribe,
    Subscription,
    encode,
)
from devicetrust.gateway.session_store import SessionStore
from devicetrust.gateway.sessions import SessionRegistry
from devicetrust.ingest import FeedbackQueue, FeedbackStatus
from devicetrust.pki import CaRole
from devicetrust.runtime import Platform
from devicetrust.runtime.data_plane import EmbeddedDataPlane
from tests.gateway import test_gateway_serve as serve
from tests.gateway.gateway_fixtures import WAIT, Device, paho_device
from tests.gateway.test_gateway_serve import ACTOR, NAME, _device, _tls

V5 = ProtocolVersion.V5
platform = serve.platform  # the fixture: a platform with a CA, gateway on a free port
P = TypeVar("P", bound=Packet)


def eventually(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.05)


class RawDevice:
    """A device that never acknowledges feedback: the codec over a TLS socket."""

    def __init__(self, platform: Platform, device: Device, port: int) -> None:
        context = ssl.create_default_context(cadata=platform.pki.chain_pem(CaRole.ISSUING))
        context.load_cert_chain(device.cert, device.key)
        plain = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.sock = context.wrap_socket(plain, server_hostname="localhost")
        self.decoder = Decoder(V5)
        self.packets: list[Packet] = []

    def send(self, packet: Packet) -> None:
        self.sock.sendall(encode(packet, V5))

    def expect(self, kind: type[P]) -> P:
        while not any(isinstance(p, kind) for p in self.packets):
            data = self.sock.recv(65536)
            assert data, "the gateway closed the connection"
            self.packets += self.decoder.feed(data)
        return next(p for p in self.packets if isinstance(p, kind))


@pytest.fixture
def planes(platform: Platform) -> Iterator[list[EmbeddedDataPlane]]:
    started: list[EmbeddedDataPlane] = []
    yield started
    for plane in started:
        plane.stop()


def start(platform: Platform, planes: list[EmbeddedDataPlane]) -> int:
    plane = EmbeddedDataPlane(platform)
    assert plane.start() and plane.port is not None
    planes.append(plane)
    return plane.port


def test_subscription_and_unacknowledged_feedback_survive_a_restart(
    platform: Platform, planes: list[EmbeddedDataPlane], tmp_path: Path,
) -> None:
    device = _device(platform, tmp_path, NAME)
    port = start(platform, planes)
    raw = RawDevice(platform, device, port)
    raw.send(Connect(V5, device.physical_id, clean_start=False,
                     properties=Properties(session_expiry_interval=600)))
    assert raw.expect(Connack).reason_code == 0
    raw.send(Subscribe(1, (Subscription(f"devices/{device.physical_id}/feedback",
                                        QoS.AT_LEAST_ONCE),)))
    raw.expect(Suback)
    queue = FeedbackQueue(platform.db, platform.clock)
    sent = queue.send(NAME, {"speed": 0.8}, actor=ACTOR)
    publish = raw.expect(Publish)
    assert publish.payload == b'{"speed":0.8}'
    eventually(lambda: queue.get(sent.feedback_id).status is FeedbackStatus.PUBLISHED)
    raw.sock.close()  # gone without acknowledging it
    planes.pop().stop()  # `serve` stops ...

    port = start(platform, planes)  # ... and starts again
    paho = paho_device(_tls(platform, tmp_path), v5=True, client_id=device.physical_id,
                       device=device)
    connect = PahoProperties(PacketTypes.CONNECT)
    connect.SessionExpiryInterval = 600
    try:
        assert paho.connect(port, clean_start=False, properties=connect) == 0
        paho.wait(lambda: bool(paho.messages))  # no SUBSCRIBE: the session kept it
        assert paho.messages[0].payload == b'{"speed":0.8}'
        eventually(lambda: queue.get(sent.feedback_id).status is FeedbackStatus.DELIVERED)
        assert queue.get(sent.feedback_id).delivered_at is not None
    finally:
        paho.close()


def test_a_clean_start_forgets_the_stored_session(
    platform: Platform, planes: list[EmbeddedDataPlane], tmp_path: Path,
) -> None:
    device = _device(platform, tmp_path, NAME)
    port = start(platform, planes)
    tls = _tls(platform, tmp_path)
    connect = PahoProperties(PacketTypes.CONNECT)
    connect.SessionExpiryInterval = 600
    first = paho_device(tls, v5=True, client_id=device.physical_id, device=device)
    assert first.connect(port, clean_start=False, properties=connect) == 0
    assert first.subscribe(f"devices/{device.physical_id}/feedback") == [1]
    first.close()
    second = paho_device(tls, v5=True, client_id=device.physical_id, device=device)
    try:
        assert second.connect(port) == 0  # clean start: the session is gone, here and stored
    finally:
        second.close()
    planes.pop().stop()
    plane = EmbeddedDataPlane(platform)
    assert plane.sessions.load() == []


def test_a_stored_session_expires_while_the_server_is_down(
    platform: Platform, tmp_path: Path,
) -> None:
    device = _device(platform, tmp_path, NAME)
    clock = FixedClock(SystemClock().now())
    store = SessionStore(platform.db, clock)
    store.session_saved(device.physical_id, 60, QoS.AT_LEAST_ONCE, connected=False)
    assert store.flush() == 1
    clock.advance(timedelta(seconds=59))
    [kept] = store.load()
    assert (kept.physical_id, kept.expiry, kept.subscription) == (
        device.physical_id, 60, QoS.AT_LEAST_ONCE)
    assert kept.remaining == pytest.approx(1.0)
    clock.advance(timedelta(seconds=1))
    assert store.load() == []


class Listener:
    def __init__(self) -> None:
        self.events: list[tuple[str, bool | None]] = []

    def session_saved(self, physical_id: PhysicalId, expiry: int, subscription: QoS | None,
                      *, connected: bool) -> None:
        self.events.append(("saved", connected))

    def session_forgotten(self, physical_id: PhysicalId) -> None:
        self.events.append(("forgotten", None))


class Closable:
    def disconnect(self, reason: ReasonCode, *, store_will: bool) -> None:
        return None

    def pump_feedback(self) -> None:
        return None


def test_only_persistent_sessions_reach_the_listener() -> None:
    unit = PhysicalId("6f1c1f4e-3c55-4d7e-9d1e-0f9f3c2b1a00")

    async def scenario() -> list[tuple[str, bool | None]]:
        listener = Listener()
        registry = SessionRegistry(listener)
        clean = Closable()
        registry.attach(unit, clean, clean_start=True, expiry=0)
        registry.detach(unit, clean)
        assert listener.events == []  # clean sessions cost the database nothing
        first = Closable()
        registry.attach(unit, first, clean_start=False, expiry=600)
        registry.detach(unit, first)
        again = Closable()
        registry.attach(unit, again, clean_start=True, expiry=0)  # the stored one ends
        registry.kick(unit, ReasonCode.NOT_AUTHORIZED)  # nothing stored any more
        return listener.events

    assert asyncio.run(scenario()) == [("saved", True), ("saved", False), ("forgotten", None)]

"""Fixtures for the device gateway tests: the real chain, end to end.

A CA hierarchy (`tests.ca_fixtures`) on SQLite, a server certificate it issued for
127.0.0.1, device certificates for registered active units, the device-auth service, the
ingest message store as the sink, and the gateway itself on a free loopback port in its own
event-loop thread (stopped by the fixture finalizer). The clock is fixed at the real time
of the test, so that the certificates the CA dates with it are valid for the TLS stacks of
the clients, which read the real clock.

Test modules import the fixtures they use from here (`from .gateway_fixtures import ...`).
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode as PahoReasonCode

from devicetrust.deviceauth import AuthenticatedDevice, DeviceAuthService, device_verifier
from devicetrust.domain import DeviceState, FixedClock, PhysicalId
from devicetrust.domain.clock import SystemClock
from devicetrust.gateway import (
    Gateway,
    GatewayConfig,
    GatewayThread,
    IngestSink,
    MessageSink,
    server_tls_context,
)
from devicetrust.gateway.codec import ReasonCode
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.ingest.store import MessageStore
from devicetrust.pki import Hierarchy, IssuedCertificate, PkiService, Profile
from devicetrust.store.database import Database, sqlite_url
from devicetrust.store.migrate import upgrade
from devicetrust.vault import Vault
from tests.conftest import require_service
from tests.pki.certs import make_csr

ACTOR = "operator:test"
AUDIENCE = "mqtt.devicetrust.test"
WAIT = 20.0  # seconds any single exchange may take before the test fails (not a bound)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """SQLite only: the gateway adds nothing backend-specific (deviceauth and ingest run
    their own suites on both backends)."""
    database = Database(sqlite_url(tmp_path / "devicetrust.db"))
    upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(SystemClock().now())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


@dataclass(frozen=True)
class Tls:
    client_ca: Path  # what devices trust: the root
    server_cert: Path  # leaf + issuing CA
    server_key: Path
    ca_bundle: Path  # what the server checks client chains against: root + issuing


@pytest.fixture
def tls(pki: PkiService, hierarchy: Hierarchy, tmp_path: Path) -> Tls:
    key = ec.generate_private_key(ec.SECP256R1())
    issued = pki.issue_from_csr(make_csr(key), None, Profile.SERVER, actor=ACTOR,
                                dns_names=["localhost"], ip_addresses=["127.0.0.1"])
    files = Tls(tmp_path / "root.pem", tmp_path / "server.pem", tmp_path / "server.key",
                tmp_path / "bundle.pem")
    files.client_ca.write_text(hierarchy.root.pem)
    leaf = issued.certificate.public_bytes(Encoding.PEM).decode()
    files.server_cert.write_text(leaf + hierarchy.issuing.pem)
    files.server_key.write_bytes(_pem_key(key))
    files.ca_bundle.write_text(hierarchy.root.pem + hierarchy.issuing.pem)
    return files


@dataclass(frozen=True)
class Device:
    physical_id: PhysicalId
    logical_name: str | None
    cert: Path
    key: Path
    issued: IssuedCertificate


@pytest.fixture
def make_device(identity: IdentityService, pki: PkiService,
                tmp_path: Path) -> Callable[..., Device]:
    """An active unit (holding `name` if given) with a device certificate on disk."""
    counter = iter(range(1, 10_000))

    def make(name: str | None = None) -> Device:
        n = next(counter)
        unit = identity.register(UnitSpec("arm-r7", {"controller": f"C-{n:04d}"}),
                                 actor="factory")
        if name is not None:
            identity.create_logical(name, actor=ACTOR)
            identity.bind(name, unit.physical_id, actor=ACTOR)
        else:
            identity.set_state(unit.physical_id, DeviceState.PROVISIONED, actor=ACTOR)
        identity.set_state(unit.physical_id, DeviceState.ACTIVE, actor=ACTOR)
        key = ec.generate_private_key(ec.SECP256R1())
        issued = pki.issue_from_csr(make_csr(key), unit.physical_id, Profile.DEVICE,
                                    actor=ACTOR)
        cert, key_path = tmp_path / f"device-{n}.pem", tmp_path / f"device-{n}.key"
        cert.write_bytes(issued.certificate.public_bytes(Encoding.PEM))
        key_path.write_bytes(_pem_key(key))
        return Device(unit.physical_id, name, cert, key_path, issued)

    return make


@pytest.fixture
def auth(db: Database, clock: FixedClock, ca_vault: Vault, pki: PkiService,
         hierarchy: Hierarchy) -> DeviceAuthService:
    return DeviceAuthService(db, clock, ca_vault, cert_verifier=device_verifier(pki, clock))


@pytest.fixture
def message_store(db: Database, clock: FixedClock) -> MessageStore:
    return MessageStore(db, clock)


GATEWAY_CONFIG = GatewayConfig(port=0, token_audience=AUDIENCE, connect_timeout=2.0,
                               max_packet_size=16 * 1024, max_session_expiry=600)


@pytest.fixture
def gateway_config() -> GatewayConfig:
    return GATEWAY_CONFIG


class RecordingHooks:
    """What the gateway reported through its hooks (read after the fact by the tests)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object, object]] = []

    def connected(self, device: AuthenticatedDevice) -> None:
        self.events.append(("connected", device.physical_id, device.method.value))

    def disconnected(self, physical_id: PhysicalId) -> None:
        self.events.append(("disconnected", physical_id, None))

    def feedback_acked(self, physical_id: PhysicalId, feedback_id: str) -> None:
        self.events.append(("feedback_acked", physical_id, feedback_id))

    def refused(self, physical_id: PhysicalId, reason: ReasonCode, what: str) -> None:
        self.events.append(("refused", physical_id, (int(reason), what)))


@pytest.fixture
def hooks() -> RecordingHooks:
    return RecordingHooks()


@pytest.fixture
def sink(message_store: MessageStore) -> MessageSink:
    return IngestSink(message_store)


@pytest.fixture
def gateway(tls: Tls, auth: DeviceAuthService, sink: MessageSink, clock: FixedClock,
            gateway_config: GatewayConfig, hooks: RecordingHooks) -> Iterator[GatewayThread]:
    context = server_tls_context(tls.server_cert, tls.server_key, tls.ca_bundle)
    server = Gateway(gateway_config, tls=context, authenticator=auth, sink=sink, clock=clock,
                     hooks=hooks)
    running = GatewayThread(server).start()
    yield running
    running.stop()


def mosquitto_clients() -> None:
    if shutil.which("mosquitto_pub") is None or shutil.which("mosquitto_sub") is None:
        require_service("mosquitto-clients", "mosquitto_pub/mosquitto_sub not on PATH")


# ---- a paho-mqtt device ---------------------------------------------------------------------


@dataclass
class PahoDevice:
    """A paho-mqtt client in its network thread, with what the server sent it recorded."""

    client: mqtt.Client
    v5: bool
    connack: list[int] = field(default_factory=list)
    disconnects: list[int] = field(default_factory=list)
    pubacks: dict[int, int] = field(default_factory=dict)  # mid -> reason code
    subacks: dict[int, list[int]] = field(default_factory=dict)
    messages: list[mqtt.MQTTMessage] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def wait(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        with self.changed:
            assert self.changed.wait_for(predicate, timeout), "the server did not answer"

    def connect(self, port: int, *, clean_start: bool = True,
                properties: Properties | None = None) -> int:
        """Connect and return the CONNACK reason code (3.1.1 return codes as paho maps
        them to MQTT 5 codes: 4 -> 0x86, 5 -> 0x87, 2 -> 0x85)."""
        kwargs: dict[str, Any] = {"keepalive": 30}
        if self.v5:
            kwargs.update(clean_start=clean_start, properties=properties)
        self.client.connect("127.0.0.1", port, **kwargs)
        self.client.loop_start()
        self.wait(lambda: bool(self.connack))
        return self.connack[-1]

    def publish(self, topic: str, body: dict[str, Any], qos: int = 1,
                properties: Properties | None = None) -> int | None:
        """Publish and, at QoS 1, return the PUBACK reason code; None if the connection
        closed instead."""
        info = self.client.publish(topic, json.dumps(body), qos=qos, properties=properties)
        if qos == 0:
            return None
        self.wait(lambda: info.mid in self.pubacks or bool(self.disconnects))
        return self.pubacks.get(info.mid)

    def subscribe(self, topic_filter: str, qos: int = 1) -> list[int] | None:
        _, mid = self.client.subscribe(topic_filter, qos)
        self.wait(lambda: mid in self.subacks or bool(self.disconnects))
        return self.subacks.get(mid)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _code(reason: PahoReasonCode | int) -> int:
    return reason.value if isinstance(reason, PahoReasonCode) else int(reason)


def paho_device(tls: Tls, *, v5: bool, client_id: str, device: Device | None = None,
                username: str | None = None, password: str | None = None) -> PahoDevice:
    protocol = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                         reconnect_on_failure=False)
    client.tls_set(ca_certs=str(tls.client_ca),
                   certfile=str(device.cert) if device else None,
                   keyfile=str(device.key) if device else None)
    if username is not None:
        client.username_pw_set(username, password)
    paho = PahoDevice(client, v5)

    def record(update: Callable[[], None]) -> None:
        with paho.changed:
            update()
            paho.changed.notify_all()

    client.on_connect = lambda c, u, flags, rc, props: record(
        lambda: paho.connack.append(_code(rc)))
    client.on_disconnect = lambda c, u, flags, rc, props: record(
        lambda: paho.disconnects.append(_code(rc)))
    client.on_publish = lambda c, u, mid, rc, props: record(
        lambda: paho.pubacks.__setitem__(mid, _code(rc)))
    client.on_subscribe = lambda c, u, mid, rcs, props: record(
        lambda: paho.subacks.__setitem__(mid, [_code(r) for r in rcs]))
    client.on_message = lambda c, u, msg: record(lambda: paho.messages.append(msg))
    return paho


@pytest.fixture
def paho_devices() -> Iterator[list[PahoDevice]]:
    """Register the paho clients a test opens here; they are stopped at the end."""
    opened: list[PahoDevice] = []
    yield opened
    for device in opened:
        device.close()

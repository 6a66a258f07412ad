"""Faults and quotas: a message store that fails stops acknowledgements (nothing acknowledged is
lost) and the gateway recovers by itself; the connection quota (0x97); keep alive enforced
at 1.5x; a certificate of another CA never completes the handshake."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devicetrust.deviceauth import DeviceAuthService, device_verifier
from devicetrust.domain import FixedClock
from devicetrust.gateway import (
    DeviceMessage,
    Gateway,
    GatewayConfig,
    GatewayThread,
    IngestSink,
    SinkResult,
    server_tls_context,
)
from devicetrust.gateway.codec import (
    Connack,
    Connect,
    Decoder,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
    ProtocolVersion,
    ReasonCode,
    encode,
)
from devicetrust.ingest.store import MessageStore
from devicetrust.pki import PkiService
from devicetrust.store.database import Database, sqlite_url
from devicetrust.vault import Vault
from tests.pki.ocsp_fixtures import ca_cert

from .gateway_fixtures import (
    WAIT,
    Device,
    PahoDevice,
    Tls,
    paho_device,
)

V5 = ProtocolVersion.V5
NAME = "line-03-left-welding-12"


class SwitchableSink:
    """The real ingest store behind a switch that makes `store` fail as a database outage
    would (fault injection: the rest of the chain is real)."""

    def __init__(self, inner: IngestSink) -> None:
        self.inner = inner
        self.down = threading.Event()

    async def store(self, messages: Sequence[DeviceMessage]) -> list[SinkResult]:
        if self.down.is_set():
            raise ConnectionError("database unavailable")
        return await self.inner.store(messages)


@pytest.fixture
def sink(message_store: MessageStore) -> SwitchableSink:
    return SwitchableSink(IngestSink(message_store))


@pytest.fixture
def gateway_config() -> GatewayConfig:
    return GatewayConfig(port=0, token_audience="mqtt.devicetrust.test", connect_timeout=2.0,
                         max_connections=2, max_keep_alive=2, receive_maximum=4)


def test_store_outage_stops_acknowledgements_and_recovers(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], sink: SwitchableSink, message_store: MessageStore,
) -> None:
    device = make_device(NAME)
    topic = f"devices/{device.physical_id}/telemetry"
    first = paho_device(tls, v5=True, client_id=device.physical_id, device=device)
    paho_devices.append(first)
    assert first.connect(gateway.port) == 0
    sink.down.set()
    assert first.publish(topic, {"during": "outage"}) is None  # no PUBACK ...
    assert first.disconnects == [ReasonCode.SERVER_BUSY]  # ... the connection closed
    assert message_store.telemetry_of(device.physical_id) == []
    sink.down.clear()
    again = paho_device(tls, v5=True, client_id=device.physical_id, device=device)
    paho_devices.append(again)
    assert again.connect(gateway.port) == 0
    assert again.publish(topic, {"after": "outage"}) == 0
    assert [m.payload for m in message_store.telemetry_of(device.physical_id)] == [
        {"after": "outage"}]


@contextmanager
def raw(tls: Tls, port: int, device: Device) -> Iterator[ssl.SSLSocket]:
    context = ssl.create_default_context(cafile=str(tls.client_ca))
    context.load_cert_chain(device.cert, device.key)
    plain = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    with context.wrap_socket(plain, server_hostname="127.0.0.1") as sock:
        yield sock


def exchange(sock: ssl.SSLSocket, packet: Packet) -> Packet:
    sock.sendall(encode(packet, V5))
    decoder = Decoder(V5)
    while True:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed by the gateway")
        if packets := decoder.feed(data):
            return packets[0]


def test_connection_quota(tls: Tls, gateway: GatewayThread,
                          make_device: Callable[..., Device]) -> None:
    a, b, c = make_device(), make_device(), make_device()
    with raw(tls, gateway.port, a) as one, raw(tls, gateway.port, b) as two:
        assert isinstance(exchange(one, Connect(V5, a.physical_id)), Connack)
        assert isinstance(exchange(two, Connect(V5, b.physical_id)), Connack)
        with raw(tls, gateway.port, c) as three:
            refused = exchange(three, Connect(V5, c.physical_id))
    assert isinstance(refused, Connack)
    assert refused.reason_code is ReasonCode.QUOTA_EXCEEDED


def test_keep_alive_is_enforced(tls: Tls, gateway: GatewayThread,
                                make_device: Callable[..., Device]) -> None:
    device = make_device()
    with raw(tls, gateway.port, device) as sock:
        connack = exchange(sock, Connect(V5, device.physical_id, keep_alive=1))
        assert isinstance(connack, Connack) and connack.reason_code is ReasonCode.SUCCESS
        assert exchange(sock, Pingreq()) == Pingresp()  # a ping keeps it alive
        decoder, packets = Decoder(V5), []
        while data := sock.recv(65536):  # then silence: closed after 1.5 x 1 s
            packets += decoder.feed(data)
    assert packets == [Disconnect(ReasonCode.KEEP_ALIVE_TIMEOUT)]
    assert gateway.counters()["devicetrust_gateway_keep_alive_timeouts_total"] == 1


def test_keep_alive_above_the_cap_is_lowered(tls: Tls, gateway: GatewayThread,
                                             make_device: Callable[..., Device]) -> None:
    device = make_device()
    with raw(tls, gateway.port, device) as sock:
        connack = exchange(sock, Connect(V5, device.physical_id, keep_alive=3600))
    assert isinstance(connack, Connack)
    assert connack.properties.server_keep_alive == 2


def stranger_certificate(physical_id: str, now: datetime, tmp_path: Path) -> tuple[Path, Path]:
    """A device certificate naming `physical_id`, like ours in every way but its issuer."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = ca_cert("stranger root", ca_key, None, now - timedelta(days=1), now + timedelta(days=9))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, physical_id)]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"urn:uuid:{physical_id}")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(ca_key, hashes.SHA256()))
    cert, key_path = tmp_path / "stranger.pem", tmp_path / "stranger.key"
    cert.write_bytes(leaf.public_bytes(Encoding.PEM))
    key_path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return cert, key_path


def test_certificate_of_another_ca_fails_the_handshake(
    tls: Tls, gateway: GatewayThread, clock: FixedClock, tmp_path: Path,
    make_device: Callable[..., Device],
) -> None:
    device = make_device(NAME)
    cert, key = stranger_certificate(device.physical_id, clock.now(), tmp_path)
    forged = Device(device.physical_id, NAME, cert, key, device.issued)
    with pytest.raises((ssl.SSLError, ConnectionError)), \
            raw(tls, gateway.port, forged) as sock:
        exchange(sock, Connect(V5, device.physical_id))
    assert not gateway.is_connected(device.physical_id)


def test_authentication_service_failure_is_server_unavailable(
    tls: Tls, make_device: Callable[..., Device], clock: FixedClock, ca_vault: Vault,
    pki: PkiService, message_store: MessageStore, tmp_path: Path,
) -> None:
    """Device authentication over a database without its tables (as after a failed
    migration): the CONNECT is answered 0x88 and the gateway keeps serving."""
    broken = Database(sqlite_url(tmp_path / "empty.db"))
    auth = DeviceAuthService(broken, clock, ca_vault, cert_verifier=device_verifier(pki, clock))
    context = server_tls_context(tls.server_cert, tls.server_key, tls.ca_bundle)
    server = Gateway(GatewayConfig(port=0), tls=context, authenticator=auth,
                     sink=IngestSink(message_store), clock=clock)
    device = make_device(NAME)
    with GatewayThread(server) as running, raw(tls, running.port, device) as sock:
        connack = exchange(sock, Connect(V5, device.physical_id))
    broken.dispose()
    assert isinstance(connack, Connack)
    assert connack.reason_code is ReasonCode.SERVER_UNAVAILABLE


@pytest.mark.parametrize("v5", [pytest.param(True, id="mqttv5"),
                                pytest.param(False, id="mqttv311")])
def test_flow_control_with_a_small_receive_maximum(
    tls: Tls, gateway: GatewayThread, paho_devices: list[PahoDevice],
    make_device: Callable[..., Device], message_store: MessageStore, v5: bool,
) -> None:
    """Receive Maximum 4, a client sending 20 at once (3.1.1 cannot be told the limit, and
    paho-mqtt 2 ignores it in MQTT 5 too): the gateway stops reading until acknowledgements
    catch up, and every message is stored and acknowledged, none refused."""
    device = make_device(NAME)
    paho = paho_device(tls, v5=v5, client_id=device.physical_id, device=device)
    paho_devices.append(paho)
    paho.client.max_inflight_messages_set(20)
    assert paho.connect(gateway.port) == 0
    topic = f"devices/{device.physical_id}/telemetry"
    infos = [paho.client.publish(topic, f'{{"seq": {n}}}', qos=1) for n in range(60)]
    paho.wait(lambda: len(paho.pubacks) == 60 or bool(paho.disconnects))
    assert paho.disconnects == []
    assert {paho.pubacks[i.mid] for i in infos} == {0}
    stored = message_store.telemetry_of(device.physical_id, limit=100)
    assert sorted(m.payload["seq"] for m in stored) == list(range(60))

"""Limits and adversarial byte streams, from a raw TLS socket: TLS 1.3 only, a silent
(slowloris) connection closed after the CONNECT timeout, an oversized packet refused with
0x95 before its body arrives, QoS 2 and unknown protocol levels refused, what the CONNACK
advertises."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from devicetrust.gateway import GatewayConfig, GatewayThread
from devicetrust.gateway.codec import (
    Connack,
    Connect,
    Decoder,
    Disconnect,
    Packet,
    ProtocolVersion,
    Publish,
    QoS,
    ReasonCode,
    encode,
)
from devicetrust.ingest.store import MessageStore

from .gateway_fixtures import (
    GATEWAY_CONFIG,
    WAIT,
    Device,
    Tls,
)

V5 = ProtocolVersion.V5


def client_context(tls: Tls, device: Device | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tls.client_ca))
    if device is not None:
        context.load_cert_chain(device.cert, device.key)
    return context


@contextmanager
def raw(tls: Tls, gateway: GatewayThread, device: Device | None,
        context: ssl.SSLContext | None = None) -> Iterator[ssl.SSLSocket]:
    context = context or client_context(tls, device)
    plain = socket.create_connection(("127.0.0.1", gateway.port), timeout=WAIT)
    with context.wrap_socket(plain, server_hostname="127.0.0.1") as sock:
        yield sock


def read_packets(sock: ssl.SSLSocket, version: ProtocolVersion = V5) -> list[Packet]:
    """Every packet the server sends until it closes the connection."""
    decoder = Decoder(version)
    packets: list[Packet] = []
    while data := sock.recv(65536):
        packets += decoder.feed(data)
    return packets


def test_tls_below_1_3_is_refused(tls: Tls, gateway: GatewayThread,
                                  make_device: Callable[..., Device]) -> None:
    context = client_context(tls, make_device())
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError), raw(tls, gateway, None, context):
        pass


def test_a_silent_connection_is_closed_after_the_connect_timeout(
    tls: Tls, gateway: GatewayThread, make_device: Callable[..., Device],
) -> None:
    with raw(tls, gateway, make_device()) as sock:
        started = time.perf_counter()
        sock.sendall(encode(Connect(V5, "x"), V5)[:5])  # a CONNECT that never completes
        assert read_packets(sock) == []
        elapsed = time.perf_counter() - started
    print(f"closed after {elapsed:.2f} s (connect_timeout {GATEWAY_CONFIG.connect_timeout} s)")
    assert gateway.counters()["devicetrust_gateway_connect_timeouts_total"] == 1


def connect(sock: ssl.SSLSocket, device: Device, version: ProtocolVersion = V5) -> Connack:
    sock.sendall(encode(Connect(version, device.physical_id), version))
    decoder = Decoder(version)
    while not (packets := decoder.feed(data := sock.recv(65536))):
        assert data, "the gateway closed the connection without CONNACK"
    assert isinstance(packets[0], Connack)
    return packets[0]


def test_connack_advertises_the_limits(
    tls: Tls, gateway: GatewayThread, make_device: Callable[..., Device],
    gateway_config: GatewayConfig,
) -> None:
    device = make_device()
    with raw(tls, gateway, device) as sock:
        connack = connect(sock, device)
    props = connack.properties
    assert connack.reason_code is ReasonCode.SUCCESS
    assert (props.maximum_qos, props.retain_available, props.wildcard_subscription_available,
            props.shared_subscription_available, props.subscription_identifier_available) == (
        1, False, False, False, False)
    assert props.maximum_packet_size == gateway_config.max_packet_size
    assert props.receive_maximum == gateway_config.receive_maximum


def publish_header(total: int) -> bytes:
    """The fixed header of a QoS 0 PUBLISH of `total` bytes (minimal remaining length)."""
    length = bytearray()
    remaining = total - 2
    while len(bytes([0x30]) + encode_varint(remaining)) + remaining != total:
        remaining -= 1
    length += encode_varint(remaining)
    return bytes([0x30]) + bytes(length)


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@pytest.mark.parametrize("announced", [16 * 1024 + 1, 200 * 1024 * 1024])
def test_oversized_packet_is_refused_before_its_body(
    tls: Tls, gateway: GatewayThread, make_device: Callable[..., Device],
    message_store: MessageStore, announced: int,
) -> None:
    device = make_device()
    with raw(tls, gateway, device) as sock:
        connect(sock, device)
        header = publish_header(announced)
        sock.sendall(header)  # the header alone: the gateway does not wait for the body
        assert read_packets(sock) == [Disconnect(ReasonCode.PACKET_TOO_LARGE)]
    assert message_store.telemetry_of(device.physical_id) == []


def test_qos2_publish_is_refused(tls: Tls, gateway: GatewayThread,
                                 make_device: Callable[..., Device]) -> None:
    device = make_device()
    with raw(tls, gateway, device) as sock:
        connect(sock, device)
        topic = f"devices/{device.physical_id}/telemetry"
        sock.sendall(encode(Publish(topic, b"{}", QoS.EXACTLY_ONCE, packet_id=1), V5))
        assert read_packets(sock) == [Disconnect(ReasonCode.QOS_NOT_SUPPORTED)]


def test_mqtt_3_1_is_answered_in_3_1_1_form(tls: Tls, gateway: GatewayThread,
                                            make_device: Callable[..., Device]) -> None:
    device = make_device()
    mqisdp = (b"\x10\x13\x00\x06MQIsdp\x03\x02\x00\x3c\x00\x05hello")
    with raw(tls, gateway, device) as sock:
        sock.sendall(mqisdp)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data == b"\x20\x02\x00\x01"  # CONNACK, return code 1: unacceptable protocol level


def test_a_packet_before_connect_closes_the_connection(
    tls: Tls, gateway: GatewayThread, make_device: Callable[..., Device],
) -> None:
    device = make_device()
    with raw(tls, gateway, device) as sock:
        sock.sendall(encode(Publish(f"devices/{device.physical_id}/telemetry", b"{}"), V5))
        assert read_packets(sock) == []
    assert gateway.counters()['devicetrust_gateway_refusals_total{reason_code="0x82"}'] == 1


def test_a_second_connect_is_a_protocol_error(
    tls: Tls, gateway: GatewayThread, make_device: Callable[..., Device],
) -> None:
    device = make_device()
    with raw(tls, gateway, device) as sock:
        connect(sock, device)
        sock.sendall(encode(Connect(V5, device.physical_id), V5))
        assert read_packets(sock) == [Disconnect(ReasonCode.PROTOCOL_ERROR)]

"""Interoperability with paho-mqtt (a client we did not write), as MQTT 3.1.1 and 5 clients,
against a server that answers only with the codec (tests/gateway/mqtt_server.py)."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as PahoProperties

from devicetrust.gateway.codec import (
    Connect,
    Disconnect,
    Pingreq,
    Properties,
    ProtocolVersion,
    Publish,
    QoS,
    Subscribe,
    Subscription,
    Unsubscribe,
    Will,
)

from .mqtt_server import CodecServer

PAHO_VERSION = {ProtocolVersion.V311: mqtt.MQTTv311, ProtocolVersion.V5: mqtt.MQTTv5}


@pytest.fixture
def server() -> Iterator[CodecServer]:
    with CodecServer() as srv:
        yield srv
    assert not srv.errors, srv.errors  # paho never sent anything the codec refused


def paho_client(version: ProtocolVersion, client_id: str) -> mqtt.Client:
    return mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                       protocol=PAHO_VERSION[version])


def connect(client: mqtt.Client, server: CodecServer, version: ProtocolVersion,
            keepalive: int = 60) -> queue.Queue[mqtt.MQTTMessage]:
    inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    client.on_message = lambda _c, _u, msg: inbox.put(msg)
    if version is ProtocolVersion.V5:
        props = PahoProperties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 30
        client.connect("127.0.0.1", server.port, keepalive=keepalive, properties=props)
    else:
        client.connect("127.0.0.1", server.port, keepalive=keepalive)
    client.loop_start()
    return inbox


@pytest.mark.parametrize("version", list(ProtocolVersion))
def test_paho_session_connect_subscribe_publish_ping_disconnect(
        server: CodecServer, version: ProtocolVersion) -> None:
    v5 = version is ProtocolVersion.V5
    device = paho_client(version, "line-03-left-welding-12")
    device.username_pw_set("c2c38155-b0d2-48b6-82fd-22fe3b316224", "s3cret\u00e9")
    device.will_set("devices/dev-1/status", b"offline", qos=1, retain=False)
    inbox = connect(device, server, version, keepalive=1)
    try:
        _, mid = device.subscribe("devices/dev-1/feedback", qos=1)
        server.wait_for(lambda r: any(isinstance(p, Subscribe) for _, p in r))
        device.publish("devices/dev-1/diagnostics", b'{"parts_per_hour": 42}', qos=0)
        user = None
        if v5:
            user = PahoProperties(PacketTypes.PUBLISH)
            user.UserProperty = [("sensor", "torque"), ("joint", "3")]
        info = device.publish("devices/dev-1/telemetry", bytes(range(200)), qos=1,
                              properties=user)
        info.wait_for_publish(timeout=20)
        assert info.is_published()  # paho accepted the codec's PUBACK
        # keepalive=1: with nothing else to send, paho pings the server.
        server.wait_for(lambda r: any(isinstance(p, Pingreq) for _, p in r))
        # Feedback from another client reaches the device through the codec's encoder.
        backend = paho_client(version, "backend")
        connect(backend, server, version)
        backend.publish("devices/dev-1/feedback", b"slow down", qos=1).wait_for_publish(20)
        message = inbox.get(timeout=20)
        assert (message.topic, message.payload, message.qos) == (
            "devices/dev-1/feedback", b"slow down", 1)
        backend.disconnect()
        backend.loop_stop()
        device.unsubscribe("devices/dev-1/feedback")
        server.wait_for(lambda r: any(isinstance(p, Unsubscribe) for _, p in r))
    finally:
        device.disconnect()
        device.loop_stop()
    server.wait_for(lambda r: any(isinstance(p, Disconnect) and c.startswith("line")
                                  for c, p in r))

    who = "line-03-left-welding-12"
    [connect_packet] = server.packets_from(who, Connect)
    assert connect_packet == Connect(
        version, who, True, 1, "c2c38155-b0d2-48b6-82fd-22fe3b316224", "s3cret\u00e9".encode(),
        Will("devices/dev-1/status", b"offline", QoS.AT_LEAST_ONCE, False),
        Properties(session_expiry_interval=30) if v5 else Properties())
    [subscribe] = server.packets_from(who, Subscribe)
    assert subscribe == Subscribe(mid, (Subscription("devices/dev-1/feedback", QoS(1)),))
    publishes = server.packets_from(who, Publish)
    assert publishes[0] == Publish("devices/dev-1/diagnostics", b'{"parts_per_hour": 42}')
    assert publishes[1] == Publish(
        "devices/dev-1/telemetry", bytes(range(200)), QoS.AT_LEAST_ONCE, packet_id=info.mid,
        properties=Properties(user_properties=(("sensor", "torque"), ("joint", "3")))
        if v5 else Properties())
    [unsubscribe] = server.packets_from(who, Unsubscribe)
    assert unsubscribe.topic_filters == ("devices/dev-1/feedback",)
    assert server.packets_from(who, Disconnect) == [Disconnect()]


def test_paho_v5_subscription_options_and_identifier(server: CodecServer) -> None:
    client = paho_client(ProtocolVersion.V5, "opts")
    connect(client, server, ProtocolVersion.V5)
    try:
        props = PahoProperties(PacketTypes.SUBSCRIBE)
        props.SubscriptionIdentifier = 7
        options = mqtt.SubscribeOptions(qos=1, noLocal=True, retainAsPublished=True,
                                        retainHandling=2)
        _, mid = client.subscribe([("devices/+/feedback", options),
                                   ("$share/ingest/devices/#", mqtt.SubscribeOptions(qos=0))],
                                  properties=props)
        server.wait_for(lambda r: any(isinstance(p, Subscribe) for _, p in r))
    finally:
        client.disconnect()
        client.loop_stop()
    [subscribe] = server.packets_from("opts", Subscribe)
    assert subscribe.packet_id == mid
    assert subscribe.properties == Properties(subscription_identifiers=(7,))
    first, second = subscribe.subscriptions
    assert (first.topic_filter, first.qos, first.no_local, first.retain_as_published,
            first.retain_handling) == ("devices/+/feedback", QoS(1), True, True, 2)
    assert second == Subscription("$share/ingest/devices/#")


def test_paho_v5_qos2_publish_is_refused_with_qos_not_supported(server: CodecServer) -> None:
    client = paho_client(ProtocolVersion.V5, "qos2")
    reasons: queue.Queue[int] = queue.Queue()
    client.on_disconnect = lambda _c, _u, _f, reason, _p: reasons.put(reason.value)
    connect(client, server, ProtocolVersion.V5)
    try:
        client.publish("devices/dev-1/diagnostics", b"x", qos=2)
        assert reasons.get(timeout=20) == 0x9B  # paho decoded the codec's DISCONNECT
    finally:
        client.loop_stop()
    [publish] = server.packets_from("qos2", Publish)
    assert (publish.qos, publish.payload) == (QoS.EXACTLY_ONCE, b"x")

"""Interoperability with the mosquitto_pub / mosquitto_sub command-line clients (Debian's
mosquitto-clients), MQTT 3.1.1 and 5, against the codec-only test server."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from devicetrust.gateway.codec import (
    Connect,
    Disconnect,
    Properties,
    ProtocolVersion,
    Publish,
    QoS,
    Subscribe,
    Subscription,
)

from ..conftest import require_service
from .mqtt_server import CodecServer

CLI_VERSION = {ProtocolVersion.V311: "mqttv311", ProtocolVersion.V5: "mqttv5"}


@pytest.fixture
def server() -> Iterator[CodecServer]:
    if shutil.which("mosquitto_pub") is None or shutil.which("mosquitto_sub") is None:
        require_service("mosquitto-clients", "mosquitto_pub/mosquitto_sub not on PATH")
    with CodecServer() as srv:
        yield srv
    assert not srv.errors, srv.errors


def common(server: CodecServer, version: ProtocolVersion, client_id: str) -> list[str]:
    return ["-h", "127.0.0.1", "-p", str(server.port), "-V", CLI_VERSION[version],
            "-i", client_id]


@pytest.mark.parametrize("version", list(ProtocolVersion))
def test_mosquitto_pub_and_sub_through_the_codec(server: CodecServer,
                                                 version: ProtocolVersion) -> None:
    v5 = version is ProtocolVersion.V5
    sub = subprocess.Popen(
        ["mosquitto_sub", *common(server, version, "robot-sub"), "-t", "devices/+/feedback",
         "-q", "1", "-C", "2", "-W", "30", "-k", "5", "-F", "%t|%q|%p"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        server.wait_for(lambda r: any(isinstance(p, Subscribe) for _, p in r))
        properties = ["-D", "publish", "user-property", "origin", "backend"] if v5 else []
        for qos_arg, message in (("0", "stop"), ("1", "resume at 10:00")):
            subprocess.run(
                ["mosquitto_pub", *common(server, version, f"backend-q{qos_arg}"),
                 "-u", "backend", "-P", "pw", "-t", "devices/dev-1/feedback", "-m", message,
                 "-q", qos_arg, *properties],
                check=True, timeout=30, capture_output=True)
        out, err = sub.communicate(timeout=30)
    finally:
        sub.kill()
        sub.wait()
    assert sub.returncode == 0, err
    server.wait_for(lambda r: sum(isinstance(p, Disconnect) for _, p in r) >= 3)
    # mosquitto_sub decoded what the codec's encoder wrote.
    assert out.splitlines() == ["devices/dev-1/feedback|0|stop",
                                "devices/dev-1/feedback|1|resume at 10:00"]

    # ... and the codec decoded exactly what the mosquitto clients sent.
    [sub_connect] = server.packets_from("robot-sub", Connect)
    assert (sub_connect.protocol_version, sub_connect.keep_alive, sub_connect.clean_start,
            sub_connect.username, sub_connect.password, sub_connect.will) == (
        version, 5, True, None, None, None)
    [subscribe] = server.packets_from("robot-sub", Subscribe)
    assert subscribe.subscriptions == (Subscription("devices/+/feedback", QoS(1)),)
    user = Properties(user_properties=(("origin", "backend"),)) if v5 else Properties()
    for qos, message in ((0, "stop"), (1, "resume at 10:00")):
        [connect] = server.packets_from(f"backend-q{qos}", Connect)
        assert (connect.username, connect.password) == ("backend", b"pw")
        [publish] = server.packets_from(f"backend-q{qos}", Publish)
        assert publish == Publish("devices/dev-1/feedback", message.encode(), QoS(qos),
                                  packet_id=publish.packet_id if qos else None,
                                  properties=user)
        assert server.packets_from(f"backend-q{qos}", Disconnect) == [Disconnect()]


@pytest.mark.parametrize("version", list(ProtocolVersion))
def test_mosquitto_pub_binary_payload_and_retain(server: CodecServer,
                                                 version: ProtocolVersion) -> None:
    payload = bytes(range(1, 256)) * 2
    subprocess.run(
        ["mosquitto_pub", *common(server, version, "bin"), "-t", "devices/dev-1/telemetry",
         "-s", "-r", "-q", "1"],
        input=payload, check=True, timeout=30, capture_output=True)
    [publish] = server.packets_from("bin", Publish)
    assert (publish.topic, publish.payload, publish.retain, publish.qos) == (
        "devices/dev-1/telemetry", payload, True, QoS.AT_LEAST_ONCE)

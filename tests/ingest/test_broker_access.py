"""The generated Mosquitto configuration enforces device identities: mutual TLS 1.3 with a
devicetrust certificate, and each device confined to its own topics."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .clients import DeviceClient, eventually
from .conftest import Broker


def pub(
    broker: Broker, args: list[str], topic: str, message: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["mosquitto_pub", *args, "-V", "mqttv5", "-t", topic, "-m", message, "-q", "1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_device_reaches_only_its_own_topics(broker: Broker) -> None:
    spy, sender, other = (
        broker.device("robot-1"),
        broker.device("robot-2"),
        broker.device("robot-3"),
    )
    backend_view = DeviceClient(
        broker.backend_port,
        broker.cafile,
        broker.files.ingest_cert,
        broker.files.ingest_key,
        "observer",
    ).start()
    # One connection per identity: the broker forces the client id to the certificate's CN,
    # so a second connection of `spy` would take this session over.
    listener = DeviceClient(broker.port, broker.cafile, spy.cert, spy.key, "ignored").start()
    try:
        backend_view.subscribe("devices/#")
        listener.subscribe("#")
        listener.subscribe("devices/+/feedback")
        listener.subscribe(f"devices/{other.physical_id}/feedback")
        listener.subscribe(f"devices/{spy.physical_id}/feedback")
        args = broker.cli_args(sender)
        mine = pub(broker, args, f"devices/{sender.physical_id}/telemetry", '{"a":1}')
        theirs = pub(broker, args, f"devices/{other.physical_id}/telemetry", "{}")
        forged = pub(broker, args, f"devices/{sender.physical_id}/feedback", "{}")
        control = pub(
            broker,
            args,
            "$CONTROL/dynamic-security/v1",
            json.dumps({"commands": [{"command": "disableClient", "username": other.physical_id}]}),
        )
        # the backend talks to another device: the listener must not hear it
        backend_view.client.publish(f"devices/{other.physical_id}/feedback", "secret", qos=1)
        backend_view.client.publish(f"devices/{spy.physical_id}/feedback", "yours", qos=1)
        eventually(lambda: listener.received)
        time.sleep(0.5)  # anything that leaks would arrive with or right after it
    finally:
        listener.stop()
        backend_view.stop()
    assert mine.returncode == 0 and "Not authorized" not in mine.stderr
    assert "Not authorized" in theirs.stderr
    assert "Not authorized" in forged.stderr
    assert "Not authorized" in control.stderr
    heard = [t for t, _ in backend_view.received]
    assert heard.count(f"devices/{sender.physical_id}/telemetry") == 1
    assert f"devices/{other.physical_id}/telemetry" not in heard
    # `#` and `devices/+/feedback` are granted, but deliver only the device's own topic
    # (one copy per matching subscription: MQTT 5 §4.7.2 allows overlapping deliveries)
    assert set(listener.received) == {(f"devices/{spy.physical_id}/feedback", b"yours")}


def test_the_client_id_is_the_certificate_identity(broker: Broker) -> None:
    me = broker.device("robot-1")
    client = DeviceClient(broker.port, broker.cafile, me.cert, me.key, "someone-else").start()
    try:
        assert f"as {me.physical_id}" in broker.log()
    finally:
        client.stop()


def test_no_certificate_or_a_foreign_ca_cannot_connect(broker: Broker, tmp_path: Path) -> None:
    me = broker.device("robot-1")
    no_cert = subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            "127.0.0.1",
            "-p",
            str(broker.port),
            "--cafile",
            str(broker.cafile),
            "-t",
            f"devices/{me.physical_id}/telemetry",
            "-m",
            "{}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert no_cert.returncode != 0
    # a certificate naming the same unit, signed by a CA the broker does not trust
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, me.physical_id)])
    now = datetime.now(UTC)
    forged = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "f.pem").write_bytes(forged.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "f.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    foreign = subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            "127.0.0.1",
            "-p",
            str(broker.port),
            "--cafile",
            str(broker.cafile),
            "--cert",
            str(tmp_path / "f.pem"),
            "--key",
            str(tmp_path / "f.key"),
            "-t",
            f"devices/{me.physical_id}/telemetry",
            "-m",
            "{}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert foreign.returncode != 0
    # nor may a device certificate log in on the backend listener
    backend = subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            "127.0.0.1",
            "-p",
            str(broker.backend_port),
            "--cafile",
            str(broker.cafile),
            "--cert",
            str(me.cert),
            "--key",
            str(me.key),
            "-t",
            "devices/x/telemetry",
            "-m",
            "{}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert backend.returncode != 0


def test_tls_below_1_3_is_refused(broker: Broker) -> None:
    me = broker.device("robot-1")

    def handshake(maximum: ssl.TLSVersion) -> str | None:
        context = ssl.create_default_context(cafile=str(broker.cafile))
        context.maximum_version = maximum
        context.load_cert_chain(str(me.cert), str(me.key))
        with (
            socket.create_connection(("127.0.0.1", broker.port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            return tls.version()

    assert handshake(ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        handshake(ssl.TLSVersion.TLSv1_2)


def test_files_the_broker_reads_are_not_world_readable_secrets(broker: Broker) -> None:
    files = broker.files
    assert files.server_key.stat().st_mode & 0o777 in (0o640, 0o600)
    assert files.ingest_key.stat().st_mode & 0o777 == 0o600
    conf = files.conf.read_text()
    for line in (
        "tls_version tlsv1.3",
        "require_certificate true",
        "use_identity_as_username true",
        f"crlfile {files.crlfile}",
        "plugin_opt_config_file",
    ):
        assert line in conf

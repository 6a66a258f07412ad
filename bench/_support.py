"""What the benchmarks share: throw-away databases, free loopback ports, enrolled devices with
certificates on disk, and a Mosquitto baseline broker.

Run a benchmark as `python bench/<name>.py`: its own folder is then first on sys.path, so
`from _support import ...` finds this module.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import create_engine, text

from devicetrust.domain import DeviceState
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.pki import IssueRequest, PkiService, Profile
from devicetrust.store import sqlite_url

PG_ADMIN = os.environ.get(
    "DEVICETRUST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield sqlite_url(Path(tmp) / "bench.db")
        return
    name = f"devicetrust_bench_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- devices and a Mosquitto baseline, shared by the data-plane benchmarks ------------------


@dataclass(frozen=True)
class BenchDevice:
    """A registered unit with a device certificate and its key (clear: throw-away) on disk."""

    physical_id: str
    cert: Path
    key: Path
    serial_hex: str


def enroll_devices(
    identity: IdentityService, pki: PkiService, folder: Path, count: int, *, actor: str,
    names: Sequence[str] = (),
) -> list[BenchDevice]:
    """`count` units registered and certified in batches of 1,000 (one transaction each);
    the first `len(names)` hold those logical names and are active, the others stay
    `manufactured` (device authentication admits them; they may send telemetry)."""
    out: list[BenchDevice] = []
    for start in range(0, count, 1000):
        size = min(1000, count - start)
        units = identity.register_batch(
            [UnitSpec("bench", {"n": str(start + i)}) for i in range(size)], actor=actor)
        keys = [ec.generate_private_key(ec.SECP256R1()) for _ in units]
        issued = pki.issue_batch(
            [IssueRequest(csr(key), unit.physical_id, Profile.DEVICE)
             for unit, key in zip(units, keys, strict=True)], actor=actor)
        for unit, key, cert in zip(units, keys, issued, strict=True):
            n = len(out)
            if n < len(names):
                identity.create_logical(names[n], actor=actor)
                identity.bind(names[n], unit.physical_id, actor=actor)
                identity.set_state(unit.physical_id, DeviceState.ACTIVE, actor=actor)
            device = BenchDevice(unit.physical_id, folder / f"{unit.physical_id}.pem",
                                 folder / f"{unit.physical_id}.key", cert.serial_hex)
            device.cert.write_text(cert.pem)
            write_key(device.key, key)
            out.append(device)
    return out


def csr(key: ec.EllipticCurvePrivateKey) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.PEM)


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))


def wait_listening(port: int, process: subprocess.Popen[bytes], what: str,
                   timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.05)


@contextmanager
def mosquitto(folder: Path, *, bundle: Path, cert: Path, key: Path,
              extra: str = "") -> Iterator[int]:
    """A Mosquitto 2 on a free loopback port: TLS 1.3, client certificates required and
    checked against `bundle`, no persistence. Yields its port; stopped on exit."""
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\ncafile {bundle}\ncertfile {cert}\nkeyfile {key}\n"
        "require_certificate true\nuse_identity_as_username false\ntls_version tlsv1.3\n"
        "allow_anonymous true\npersistence false\nmax_inflight_messages 64\n"
        f"max_queued_messages 100000\nmax_connections -1\n{extra}")
    # Mosquitto started as root drops to its own user: let it read the throw-away files.
    os.chmod(folder, 0o755)
    for path in folder.glob("*.*"):
        os.chmod(path, 0o644)
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, broker, "mosquitto")
        yield port
    finally:
        broker.terminate()
        broker.wait(10)


def paho_qos1_burst(port: int, *, cafile: str, certfile: str, keyfile: str, client_id: str,
                    topic: str, payloads: Sequence[str], inflight: int = 64) -> dict[str, float]:
    """Publish `payloads` at QoS 1 with one paho MQTT 5 client over mTLS, as fast as the
    broker acknowledges; {"started", "ended", "acked"} (wall-clock seconds)."""
    import threading
    from typing import Any

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.tls_set(ca_certs=cafile, certfile=certfile, keyfile=keyfile)
    client.max_inflight_messages_set(inflight)
    client.max_queued_messages_set(0)
    connected, done = threading.Event(), threading.Event()
    acked = [0]

    def on_publish(*_: Any) -> None:
        acked[0] += 1
        if acked[0] == len(payloads):
            done.set()

    client.on_connect = lambda *_: connected.set()
    client.on_publish = on_publish
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    connected.wait(30)
    started = time.time()
    for payload in payloads:
        client.publish(topic, payload, 1)
    done.wait(600)
    ended = time.time()
    client.disconnect()
    client.loop_stop()
    return {"started": started, "ended": ended, "acked": acked[0]}

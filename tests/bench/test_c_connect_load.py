"""The C connection load generator (bench/c/mqtt_connect_load.c) compiles and drives a real
Mosquitto (TLS 1.3, client certificates required) for a second: it completes connections
with the devices the CA issued, and counts a handshake the broker refuses as a failure."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import free_port, require_service

pytestmark = pytest.mark.slow
SOURCE = Path(__file__).resolve().parents[2] / "bench" / "c" / "mqtt_connect_load.c"
Issued = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _issue(name: str, issuer: Issued | None, *, ca: bool = False, server: bool = False) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(key.public_key())
        .issuer_name(issuer[0].subject if issuer else subject)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key


def _write(folder: Path, name: str, issued: Issued) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    cert.write_bytes(issued[0].public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        issued[1].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


@pytest.fixture
def folder() -> Iterator[Path]:
    # Mosquitto drops root to its own user: pytest's 0700 temp tree is out of its reach.
    path = Path(tempfile.mkdtemp(prefix="devicetrust-c-load-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def generator(folder: Path) -> Path:
    if shutil.which("cc") is None or not Path("/usr/include/openssl/ssl.h").exists():
        require_service("cc + libssl-dev", "a C compiler and the OpenSSL headers")
    binary = folder / "mqtt_connect_load"
    subprocess.run(
        [
            "cc",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-o",
            str(binary),
            str(SOURCE),
            "-lssl",
            "-lcrypto",
            "-lpthread",
        ],
        check=True,
    )
    return binary


@pytest.fixture
def broker(folder: Path) -> Iterator[tuple[int, Path, Issued]]:
    """A Mosquitto requiring client certificates from a fresh CA: port, CA file, the CA."""
    if shutil.which("mosquitto") is None:
        require_service("mosquitto", "mosquitto is not installed")
    ca = _issue("test CA", None, ca=True)
    cafile, _ = _write(folder, "ca", ca)
    cert, key = _write(folder, "server", _issue("localhost", ca, server=True))
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\ncafile {cafile}\ncertfile {cert}\n"
        f"keyfile {key}\nrequire_certificate true\ntls_version tlsv1.3\n"
        "allow_anonymous true\npersistence false\nset_tcp_nodelay true\n"
    )
    for path in folder.glob("*.*"):  # certificates, keys, the configuration
        path.chmod(0o644)
    process = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "no mosquitto"
                time.sleep(0.05)
        yield port, cafile, ca
    finally:
        process.terminate()
        process.wait(10)


def _run(generator: Path, port: int, cafile: Path, devices: Path) -> dict[str, object]:
    out = subprocess.run(
        [
            str(generator),
            "--port",
            str(port),
            "--cafile",
            str(cafile),
            "--devices",
            str(devices),
            "--concurrency",
            "4",
            "--seconds",
            "1",
            "--timeout",
            "5",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    report: dict[str, object] = json.loads(out.stdout)
    return report


def test_connects_devices_and_counts_refused_handshakes(
    folder: Path, generator: Path, broker: tuple[int, Path, Issued]
) -> None:
    port, cafile, ca = broker
    lines = []
    for n in range(8):
        physical_id = f"00000000-0000-4000-8000-{n:012d}"
        cert, key = _write(folder, physical_id, _issue(physical_id, ca))
        lines.append(f"{physical_id} {cert} {key}\n")
    (folder / "devices.txt").write_text("".join(lines))
    report = _run(generator, port, cafile, folder / "devices.txt")
    assert isinstance(report["connections"], int) and report["connections"] > 0
    assert report["failures"] == dict.fromkeys(
        [
            "tcp_connect",
            "tls_handshake",
            "write",
            "closed_before_connack",
            "bad_connack",
            "connack_refused",
            "timeout",
        ],
        0,
    )
    assert report["latency_ms"]["connack"]["p50"] > 0  # type: ignore[index]

    stranger = _issue("stranger", _issue("another CA", None, ca=True))
    cert, key = _write(folder, "stranger", stranger)
    (folder / "strangers.txt").write_text(f"stranger {cert} {key}\n")
    refused = _run(generator, port, cafile, folder / "strangers.txt")
    assert refused["connections"] == 0
    failures = refused["failures"]
    assert isinstance(failures, dict)
    assert failures["tls_handshake"] + failures["closed_before_connack"] > 0

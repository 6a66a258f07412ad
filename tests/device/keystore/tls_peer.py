"""A small test PKI and a TLS 1.3 server that demands a client certificate: the peer the
keystores' `load_into` is checked against (OpenSSL on both ends, loopback, free port)."""

from __future__ import annotations

import datetime
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import free_port

_NOW = datetime.datetime.now(datetime.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class DevicePki:
    """A CA that issues the server's certificate and the devices' client certificates."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def __post_init__(self) -> None:
        self.cert = self._issue(self.key.public_key(), "test CA", ca=True)

    def _issue(
        self, public: ec.EllipticCurvePublicKey, cn: str, *, ca: bool = False
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(_name("test CA"))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(_NOW - datetime.timedelta(minutes=5))
            .not_valid_after(_NOW + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
            )
        return builder.sign(self.key, hashes.SHA256())

    @property
    def ca_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def client_chain(self, public: ec.EllipticCurvePublicKey, cn: str) -> bytes:
        leaf = self._issue(public, cn)
        return leaf.public_bytes(serialization.Encoding.PEM) + self.ca_pem

    def server_context(self, directory: Path) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        (directory / "server.pem").write_bytes(self.client_chain(key.public_key(), "localhost"))
        (directory / "server.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.load_cert_chain(directory / "server.pem", directory / "server.key")
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=self.ca_pem.decode())
        return context

    def client_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.load_verify_locations(cadata=self.ca_pem.decode())
        return context


@dataclass
class Served:
    port: int
    client_subjects: list[str] = field(default_factory=list)


@contextmanager
def tls_server(pki: DevicePki) -> Iterator[Served]:
    """Accepts one TLS 1.3 connection with a verified client certificate, records the
    client's CN and answers `ok`."""
    with tempfile.TemporaryDirectory() as directory:
        context = pki.server_context(Path(directory))
    served = Served(free_port())
    listener = socket.create_server(("127.0.0.1", served.port))
    listener.settimeout(10)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            with context.wrap_socket(conn, server_side=True) as tls:
                cert = tls.getpeercert()
                assert cert is not None
                subject = dict(item[0] for item in cert["subject"])
                served.client_subjects.append(subject["commonName"])
                tls.sendall(b"ok")
        except (OSError, ssl.SSLError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        listener.close()
        thread.join(timeout=10)


def handshake(context: ssl.SSLContext, port: int) -> bytes:
    """Connect as the device and read the server's answer."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.recv(16)

"""OcspResponder behind a tiny loopback HTTP server, queried by the real `openssl ocsp` client
(POST) and by a GET client (RFC 6960 Appendix A): good, revoked with reason, unknown, with and
without nonce; a malformed body gets malformedRequest. Real time: openssl checks thisUpdate
and nextUpdate against the system clock."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from devicetrust.domain.clock import SystemClock
from devicetrust.pki.ocsp import (
    OCSP_REQUEST_MEDIA_TYPE,
    OCSP_RESPONSE_MEDIA_TYPE,
    OcspResponder,
)
from tests.conftest import require_service
from tests.pki.ocsp_fixtures import TestPki, build_pki, pem


class _OcspHandler(BaseHTTPRequestHandler):
    """What the API will do: POST body or GET path in, DER OCSPResponse out."""

    server: _OcspServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._reply(self.server.responder.respond(body))

    def do_GET(self) -> None:
        self._reply(self.server.responder.respond_get(self.path.lstrip("/")))

    def _reply(self, der: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", OCSP_RESPONSE_MEDIA_TYPE)
        self.send_header("Content-Length", str(len(der)))
        self.end_headers()
        self.wfile.write(der)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _OcspServer(ThreadingHTTPServer):
    def __init__(self, responder: OcspResponder) -> None:
        super().__init__(("127.0.0.1", 0), _OcspHandler)
        self.responder = responder


@dataclass
class Served:
    pki: TestPki
    url: str
    directory: Path

    def openssl(self, leaf: x509.Certificate, *options: str) -> subprocess.CompletedProcess[str]:
        leaf_path = self.directory / f"leaf-{leaf.serial_number:x}.pem"
        leaf_path.write_bytes(pem(leaf))
        command = [
            "openssl", "ocsp",
            "-issuer", str(self.directory / "issuing.pem"),
            "-cert", str(leaf_path),
            "-url", self.url,
            "-CAfile", str(self.directory / "chain.pem"),
            "-resp_text",
            *options,
        ]  # fmt: skip
        return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    if shutil.which("openssl") is None:
        require_service("openssl", "the openssl CLI is not on PATH")
    pki = build_pki(tmp_path, datetime.now(UTC))
    (tmp_path / "issuing.pem").write_bytes(pem(pki.issuing))
    (tmp_path / "chain.pem").write_bytes(pem(pki.issuing, pki.root))
    responder = OcspResponder(
        [(pki.issuing, pki.ocsp_signer, pki.ocsp_key)], pki.status, SystemClock()
    )
    server = _OcspServer(responder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(pki, f"http://127.0.0.1:{server.server_address[1]}/", tmp_path)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Response verify OK" in result.stderr, result.stderr
    assert "WARNING" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("nonce", [True, False], ids=["nonce", "no_nonce"])
def test_openssl_good(served: Served, nonce: bool) -> None:
    leaf = served.pki.leaf()
    out = _ok(served.openssl(leaf, *([] if nonce else ["-no_nonce"])))
    assert re.search(r"leaf-[0-9a-f]+\.pem: good", out), out
    key_hash = x509.SubjectKeyIdentifier.from_public_key(served.pki.ocsp_signer.public_key())
    assert f"Responder Id: {key_hash.digest.hex().upper()}" in out, out  # byKey
    assert ("OCSP Nonce" in out) is nonce, out
    assert "This Update" in out
    assert "Next Update" in out


@pytest.mark.parametrize("nonce", [True, False], ids=["nonce", "no_nonce"])
def test_openssl_revoked_shows_reason_and_time(served: Served, nonce: bool) -> None:
    leaf = served.pki.leaf()
    revoked_at = datetime.now(UTC) - timedelta(minutes=2)
    served.pki.status.revoke(
        served.pki.issuing, leaf.serial_number, revoked_at, x509.ReasonFlags.key_compromise
    )
    out = _ok(served.openssl(leaf, *([] if nonce else ["-no_nonce"])))
    assert re.search(r"\.pem: revoked", out), out
    assert "Reason: keyCompromise" in out, out
    assert "Revocation Time: " + revoked_at.strftime("%b %e %H:%M:%S %Y GMT") in out, out


@pytest.mark.parametrize("nonce", [True, False], ids=["nonce", "no_nonce"])
def test_openssl_unknown(served: Served, nonce: bool) -> None:
    leaf = served.pki.leaf(record=False)
    out = _ok(served.openssl(leaf, *([] if nonce else ["-no_nonce"])))
    assert re.search(r"\.pem: unknown", out), out


def test_openssl_sees_a_revocation_immediately(served: Served) -> None:
    leaf = served.pki.leaf()
    assert ": good" in _ok(served.openssl(leaf, "-no_nonce"))
    served.pki.status.revoke(served.pki.issuing, leaf.serial_number, datetime.now(UTC))
    assert ": revoked" in _ok(served.openssl(leaf, "-no_nonce"))


def _fetch(request: urllib.request.Request) -> tuple[str, ocsp.OCSPResponse]:
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.headers["Content-Type"], ocsp.load_der_ocsp_response(reply.read())


def test_http_get_request(served: Served) -> None:
    leaf = served.pki.leaf()
    der = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(leaf, served.pki.issuing, hashes.SHA256())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    url = served.url + quote(base64.b64encode(der).decode(), safe="")
    content_type, response = _fetch(urllib.request.Request(url))
    assert content_type == OCSP_RESPONSE_MEDIA_TYPE
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == leaf.serial_number


@pytest.mark.parametrize("body", [b"\x30\x03\x02\x01\x01", b"hello", b""])
def test_http_malformed_post(served: Served, body: bytes) -> None:
    request = urllib.request.Request(
        served.url, data=body, headers={"Content-Type": OCSP_REQUEST_MEDIA_TYPE}
    )
    _, response = _fetch(request)
    assert response.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST

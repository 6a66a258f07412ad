"""HTTP slowloris against the server of `devicetrust serve` (the `EmbeddedServer`: the same
uvicorn config and `api.tls.TlsH11Protocol`, HTTPS on a free loopback port): a client that
completes the TLS handshake and then sends its request headers one byte a second is closed
once `HEADER_TIMEOUT` has passed, while ordinary requests are served all along.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from devicetrust.api.tls import HEADER_TIMEOUT
from devicetrust.cli.demo_setup import demo_settings
from devicetrust.cli.embedded_server import EmbeddedServer
from devicetrust.runtime import Platform, Settings
from devicetrust.vault import Vault, generate_kek_text
from tests.conftest import free_port

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Padding: " + b"a" * 64


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    settings = demo_settings(Settings(data_dir=tmp_path / "data"), gateway_port=free_port())
    made = Platform(settings, vault=Vault.from_encoded(generate_kek_text()))
    made.pki.init_hierarchy(actor="test")
    yield made
    made.close()


def drip(address: tuple[str, int], context: ssl.SSLContext, outcome: dict[str, bool]) -> None:
    """Send REQUEST a byte a second until the server closes the connection (True) or a
    generous bound over the timeout has passed (False)."""
    give_up = time.monotonic() + HEADER_TIMEOUT + 5
    outcome["closed"] = False
    with socket.create_connection(address) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.settimeout(1.0)
        try:
            for byte in REQUEST:
                if time.monotonic() > give_up:
                    return
                tls.sendall(bytes([byte]))
                try:
                    if tls.recv(1024) == b"":  # closed by the server
                        break
                except TimeoutError:
                    continue
            else:
                return  # all of it sent and still open
        except (ConnectionError, ssl.SSLError):
            pass  # closed while writing: as good as an EOF
        outcome["closed"] = True


def test_a_slow_header_connection_is_closed_while_requests_are_served(
    platform: Platform, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    with EmbeddedServer(platform) as server:
        ca_file.write_text(server.ca_pem)
        context = ssl.create_default_context(cafile=str(ca_file))
        url = urlsplit(server.url)
        address = (url.hostname or "127.0.0.1", url.port or 443)
        outcomes: list[dict[str, bool]] = [{} for _ in range(3)]
        clients = [threading.Thread(target=drip, args=(address, context, o)) for o in outcomes]
        for client in clients:
            client.start()
        served = 0
        with httpx.Client(verify=context) as http:
            while any(c.is_alive() for c in clients):
                assert http.get(f"{server.url}/healthz").status_code == 200
                served += 1
                time.sleep(0.5)
        for client in clients:
            client.join()
    assert served > 0
    assert [o["closed"] for o in outcomes] == [True] * 3

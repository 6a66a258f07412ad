"""`cli.embedded_server`: the server of `devicetrust serve` run in threads of this process
(what the demo uses): the API over HTTPS with a one-time certificate of the platform's CA,
the MQTT gateway, and a clean stop that leaves no thread and no key file behind.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from devicetrust.cli import embedded_server
from devicetrust.cli.demo_setup import demo_settings
from devicetrust.cli.embedded_server import BackgroundWork, EmbeddedServer
from devicetrust.runtime import Platform, Settings
from devicetrust.vault import Vault, generate_kek_text
from tests.conftest import free_port


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    settings = demo_settings(Settings(data_dir=tmp_path / "data"), gateway_port=free_port())
    made = Platform(settings, vault=Vault.from_encoded(generate_kek_text()))
    made.pki.init_hierarchy(actor="test")
    yield made
    made.close()


def test_exported_members() -> None:
    assert embedded_server.__all__ == [
        "BackgroundWork",
        "EmbeddedServer",
        "tls_options",
    ]


def test_serves_https_and_mqtt_tls_then_stops_clean(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    before = {t.ident for t in threading.enumerate()}
    ca_file = tmp_path / "ca.pem"
    with EmbeddedServer(platform) as server:
        ca_file.write_text(server.ca_pem)
        assert not list(scratch.iterdir())  # the key file is gone once loaded
        answer = httpx.get(f"{server.url}/healthz", verify=ssl.create_default_context(
            cafile=str(ca_file)))
        assert answer.status_code == 200
        assert server.gateway_port == platform.settings.gateway.port
        context = ssl.create_default_context(cafile=str(ca_file))
        with socket.create_connection(("127.0.0.1", server.gateway_port)) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() == "TLSv1.3"
            leaf = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"")
            assert leaf.issuer.rfc4514_string()  # issued by the platform's CA
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/healthz", verify=False, timeout=2)
    left = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert left == []


def test_background_work_starts_the_gateway_and_stops(platform: Platform) -> None:
    work = BackgroundWork(platform)
    assert work.start() is work
    assert work.gateway_started
    work.stop()
    assert work.plane.port is None

"""`devicetrust serve` as the CA's public face: the CRL at the certificate's distribution point
(fetched with curl), `openssl ocsp` answered good, then revoked right after `cert revoke` (no
stale good), and the auto-revoker thread revoking a decommissioned unit's certificate."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest
from cryptography import x509

from tests.cli.pki_steps import device_csr, initialise, ok, register, run
from tests.conftest import free_port

if TYPE_CHECKING:
    from tests.cli.conftest import Cli

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("curl") is None,
    reason="needs the openssl and curl CLIs",
)
AUTO_REVOKE_DEADLINE = 20.0
START_TIMEOUT = 30.0


@pytest.fixture
def served(cli: Cli) -> Iterator[str]:
    """A CA with two issued device certificates (cert.pem, other.pem), chain.pem and
    issuing.pem, and `devicetrust serve` on a free port that the certificates point to."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cli.env["DEVICETRUST_PKI_PUBLIC_URL"] = base
    cli.env["DEVICETRUST_PKI_AUTOREVOKE_INTERVAL_SECONDS"] = "0.2"
    initialise(cli)
    ok(cli, "ca", "init")
    for name in ("cert", "other"):
        unit = register(cli)
        (cli.cwd / f"{name}.unit").write_text(unit)
        device_csr(cli, name, f"/CN={unit}")
        ok(cli, "cert", "issue", "--csr", f"{name}.csr", "--device", unit, "--out", f"{name}.pem")
    ok(cli, "ca", "chain", "--out", "chain.pem")
    first = run(cli, "openssl", "x509", "-in", "chain.pem", "-out", "issuing.pem")
    assert first.returncode == 0, first.stderr
    server = subprocess.Popen(
        [sys.executable, "-m", "devicetrust.cli.main", "serve", "--port", str(port)],
        cwd=cli.cwd,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert server.poll() is None, server.communicate()[1]
            try:
                httpx.get(f"{base}/healthz", timeout=1.0, trust_env=False)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        yield base
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
        assert server.returncode == 0, stderr
        assert "Traceback" not in stderr
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()


def ocsp_status(cli: Cli, base: str, cert: str) -> str:
    """What `openssl ocsp` says about `cert` (it checks the signature and the nonce)."""
    asked = run(
        cli,
        "openssl",
        "ocsp",
        "-issuer",
        "issuing.pem",
        "-cert",
        cert,
        "-url",
        f"{base}/pki/ocsp",
        "-CAfile",
        "chain.pem",
    )
    assert asked.returncode == 0, asked.stderr
    assert "Response verify OK" in asked.stderr, asked.stderr
    return asked.stdout


def crl_check(cli: Cli, url: str) -> subprocess.CompletedProcess[str]:
    """Fetch the CRL with curl from `url`, then `openssl verify -crl_check` cert.pem with it."""
    fetched = run(cli, "curl", "-sS", "--fail", "-o", "served.crl", url)
    assert fetched.returncode == 0, fetched.stderr
    converted = run(
        cli, "openssl", "crl", "-inform", "DER", "-in", "served.crl", "-out", "served-crl.pem"
    )
    assert converted.returncode == 0, converted.stderr
    return run(
        cli,
        "openssl",
        "verify",
        "-crl_check",
        "-CRLfile",
        "served-crl.pem",
        "-CAfile",
        "chain.pem",
        "cert.pem",
    )


def test_crl_and_ocsp_served_for_openssl(cli: Cli, served: str) -> None:
    leaf = x509.load_pem_x509_certificate((cli.cwd / "cert.pem").read_bytes())
    points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    crl_url = str(points[0].full_name[0].value)  # type: ignore[index]
    assert crl_url.startswith(f"{served}/pki/crl/")

    assert "cert.pem: good" in ocsp_status(cli, served, "cert.pem")
    assert crl_check(cli, crl_url).returncode == 0

    serial = f"{leaf.serial_number:X}"
    ok(cli, "cert", "revoke", "--serial", serial, "--reason", "keyCompromise")
    answer = ocsp_status(cli, served, "cert.pem")
    assert "cert.pem: revoked" in answer and "keyCompromise" in answer
    refused = crl_check(cli, crl_url)
    assert refused.returncode != 0
    assert "certificate revoked" in refused.stdout + refused.stderr
    assert "other.pem: good" in ocsp_status(cli, served, "other.pem")


def test_serve_revokes_a_decommissioned_units_certificate(cli: Cli, served: str) -> None:
    unit = (cli.cwd / "other.unit").read_text()
    assert "other.pem: good" in ocsp_status(cli, served, "other.pem")
    ok(cli, "device", "state", unit, "decommissioned", "--reason", "scrapped")
    deadline = time.monotonic() + AUTO_REVOKE_DEADLINE
    while "other.pem: revoked" not in (answer := ocsp_status(cli, served, "other.pem")):
        assert time.monotonic() < deadline, answer
        time.sleep(0.3)
    assert "cessationOfOperation" in answer
    assert "cert.pem: good" in ocsp_status(cli, served, "cert.pem")

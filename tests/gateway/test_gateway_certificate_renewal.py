"""The embedded gateway renews its server certificate while `serve` runs: at 2/3 of its
lifetime (`[gateway] server_cert_hours`) a new certificate and key are issued and loaded into
the listening TLS context; new connections get the new certificate, a live connection keeps
its session. The platform clock is advanced (no waiting): 4 of 6 minutes, inside the CA's
5-minute backdating, so the real-clock TLS stacks accept both certificates."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from devicetrust.domain import FixedClock
from devicetrust.domain.clock import SystemClock
from devicetrust.pki import CaRole, Profile
from devicetrust.runtime import Platform
from devicetrust.runtime.data_plane import EmbeddedDataPlane
from tests.gateway.embedded import gateway_platform, running_plane
from tests.gateway.gateway_fixtures import WAIT
from tests.gateway.test_gateway_serve import NAME, _connected, _device

LIFETIME_HOURS = 0.1  # six minutes: renewed after four


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(SystemClock().now())


@pytest.fixture
def platform(tmp_path: Path, clock: FixedClock) -> Iterator[Platform]:
    yield from gateway_platform(tmp_path, clock=clock, server_cert_hours=LIFETIME_HOURS)


@pytest.fixture
def plane(platform: Platform) -> Iterator[EmbeddedDataPlane]:
    yield from running_plane(platform)


def served_serial(platform: Platform, port: int) -> int:
    """The serial of the certificate a new TLS connection is given (verified by the CA)."""
    context = ssl.create_default_context(cadata=platform.pki.chain_pem(CaRole.ISSUING))
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as plain, \
            context.wrap_socket(plain, server_hostname="localhost") as sock:
        der = sock.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_the_certificate_is_renewed_for_new_connections_only(
    platform: Platform, plane: EmbeddedDataPlane, clock: FixedClock, tmp_path: Path,
) -> None:
    assert plane.port is not None and plane.certificate is not None
    first = plane.certificate.current
    assert first is not None
    assert first.not_after - first.issued_at <= timedelta(hours=LIFETIME_HOURS)
    assert served_serial(platform, plane.port) == first.certificate.serial_number
    device = _device(platform, tmp_path, NAME)
    live = _connected(platform, tmp_path, device, plane.port)
    try:
        clock.advance(timedelta(minutes=4))  # 2/3 of six minutes: due
        deadline = time.monotonic() + WAIT
        while plane.certificate.renewals == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # the watch thread renews on its next pass (every 0.25 s)
        assert plane.certificate.renewals == 1
        second = plane.certificate.current
        assert second is not None and second.serial != first.serial
        assert served_serial(platform, plane.port) == second.certificate.serial_number
        # The live session did not notice: it still publishes, and was never disconnected.
        code = live.publish(f"devices/{device.physical_id}/diagnostics", {"parts_per_hour": 7})
        assert (code, live.disconnects) == (0, [])
    finally:
        live.close()
    servers = {c.serial for c in platform.pki.list_certificates(profile=Profile.SERVER)}
    assert servers == {first.serial, second.serial}  # both recorded by the CA

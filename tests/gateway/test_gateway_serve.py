"""The embedded data plane as `devicetrust serve` runs it (`runtime.data_plane`): a server
certificate issued at start from the platform's CA (no clear key on disk), devices over
mTLS storing diagnostics, and live revocation: suspending the unit or revoking its
certificate closes the live session and the reconnection is refused."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from devicetrust.domain import DeviceState
from devicetrust.identity import UnitSpec
from devicetrust.ingest.store import MessageStore
from devicetrust.pki import CaRole, Profile
from devicetrust.runtime import Platform, Settings
from devicetrust.runtime.data_plane import EmbeddedDataPlane
from devicetrust.vault import Vault
from tests.conftest import free_port
from tests.gateway.embedded import gateway_platform, running_plane
from tests.gateway.gateway_fixtures import WAIT, Device, PahoDevice, Tls, paho_device
from tests.pki.certs import make_csr

ACTOR = "operator:test"
NAME = "line-03-left-welding-12"


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    yield from gateway_platform(tmp_path)


@pytest.fixture
def plane(platform: Platform) -> Iterator[EmbeddedDataPlane]:
    yield from running_plane(platform)


def _device(platform: Platform, tmp_path: Path, name: str) -> Device:
    unit = platform.identity.register(UnitSpec("arm-r7", {}), actor="factory")
    platform.identity.create_logical(name, actor=ACTOR)
    platform.identity.bind(name, unit.physical_id, actor=ACTOR)
    key = ec.generate_private_key(ec.SECP256R1())
    issued = platform.pki.issue_from_csr(
        make_csr(key), unit.physical_id, Profile.DEVICE, actor=ACTOR
    )
    cert, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert.write_bytes(issued.certificate.public_bytes(Encoding.PEM))
    key_file.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return Device(unit.physical_id, name, cert, key_file, issued)


def _tls(platform: Platform, tmp_path: Path) -> Tls:
    trust = tmp_path / "trust.pem"
    trust.write_text(platform.pki.chain_pem(CaRole.ISSUING))
    return Tls(trust, trust, trust, trust)  # a device needs only what it trusts


def _connected(platform: Platform, tmp_path: Path, device: Device, port: int) -> PahoDevice:
    paho = paho_device(_tls(platform, tmp_path), v5=True, client_id=device.physical_id,
                       device=device)
    assert paho.connect(port) == 0
    return paho


def _dropped_after(paho: PahoDevice) -> float:
    start = time.monotonic()
    paho.wait(lambda: bool(paho.disconnects), timeout=WAIT)
    return time.monotonic() - start


def test_no_ca_no_gateway(tmp_path: Path) -> None:
    settings = Settings.model_validate({"data_dir": tmp_path, "gateway": {"port": free_port()}})
    platform = Platform(settings, vault=Vault.from_key(os.urandom(32)))
    try:
        assert EmbeddedDataPlane(platform).start() is False
    finally:
        platform.close()


def test_no_clear_key_left_on_disk(platform: Platform, plane: EmbeddedDataPlane) -> None:
    assert plane.port is not None
    left = list(Path(tempfile.gettempdir()).glob("devicetrust-gateway-*"))
    assert left == []  # the one-time key file (encrypted) is gone as soon as it was read
    for path in platform.settings.data_dir.rglob("*"):
        if path.is_file() and path.stat().st_size < 1_000_000:
            data = path.read_bytes()  # encrypted PKCS#8 (the CA's keys) is fine
            assert b"BEGIN PRIVATE KEY" not in data and b"BEGIN EC PRIVATE KEY" not in data


def test_diagnostics_stored_then_suspension_drops_the_session(
    platform: Platform, plane: EmbeddedDataPlane, tmp_path: Path
) -> None:
    device = _device(platform, tmp_path, NAME)
    assert plane.port is not None
    paho = _connected(platform, tmp_path, device, plane.port)
    try:
        code = paho.publish(f"devices/{device.physical_id}/diagnostics", {"parts_per_hour": 41})
        assert code == 0
        stored = MessageStore(platform.db, platform.clock).diagnostics_of(NAME)
        assert [(m.physical_id, m.payload) for m in stored] == [
            (device.physical_id, {"parts_per_hour": 41})
        ]

        platform.identity.set_state(device.physical_id, DeviceState.SUSPENDED, actor=ACTOR)
        seconds = _dropped_after(paho)
        print(f"suspension -> session closed in {seconds * 1000:.0f} ms")
        assert paho.disconnects[-1] == 0x87
    finally:
        paho.close()
    again = paho_device(_tls(platform, tmp_path), v5=True, client_id=device.physical_id,
                        device=device)
    try:
        assert again.connect(plane.port) == 0x87
    finally:
        again.close()


def test_a_revoked_certificate_drops_the_session(
    platform: Platform, plane: EmbeddedDataPlane, tmp_path: Path
) -> None:
    device = _device(platform, tmp_path, NAME)
    assert plane.port is not None
    paho = _connected(platform, tmp_path, device, plane.port)
    try:
        platform.pki.revoke(device.issued.serial_hex, "keyCompromise", actor=ACTOR)
        print(f"revocation -> session closed in {_dropped_after(paho) * 1000:.0f} ms")
        assert paho.disconnects[-1] == 0x87
        paho.wait(lambda: all(d.physical_id != device.physical_id for d in plane.live.snapshot()))
    finally:
        paho.close()


def test_a_foreign_topic_is_refused_and_audited(
    platform: Platform, plane: EmbeddedDataPlane, tmp_path: Path
) -> None:
    device = _device(platform, tmp_path, NAME)
    other = _device(platform, tmp_path, "line-03-left-welding-13")
    assert plane.port is not None
    paho = _connected(platform, tmp_path, device, plane.port)
    try:
        code = paho.publish(f"devices/{other.physical_id}/telemetry", {"torque": [1.0]})
        assert code == 0x87
    finally:
        paho.close()
    topic = f"devices/{other.physical_id}/telemetry"
    deadline = time.monotonic() + WAIT
    while True:  # the auditor writes on the watch thread's next pass
        found = [
            e
            for e in platform.audit.entries(limit=1000, subject=device.physical_id)
            if e.action == "gateway.refused"
        ]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [(e.details["refused"], e.details["attempts"]) for e in found] == [
        (f"publish to {topic!r}", 1)
    ]

"""A real Mosquitto configured by `write_mosquitto_config`, on free loopback ports, with
devices that hold real devicetrust certificates. Started and stopped per test; never left
running. Without mosquitto the tests skip on a laptop and fail in CI (`require_service`)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from devicetrust.domain import FixedClock
from devicetrust.domain.ids import PhysicalId
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.ingest import (
    BrokerFiles,
    BrokerPlan,
    DynsecControl,
    FeedbackQueue,
    MessageStore,
    RevocationFollower,
    write_mosquitto_config,
)
from devicetrust.ingest.connection import BrokerConnection
from devicetrust.ingest.worker import IngestWorker
from devicetrust.pki import Hierarchy, PkiService, Profile
from devicetrust.store.database import Database
from tests.conftest import free_port, require_service
from tests.pki.certs import make_csr

ACTOR = "operator:test"


@pytest.fixture
def clock() -> FixedClock:
    # Mosquitto checks certificates against the real time: issue them "now".
    return FixedClock(datetime.now(UTC))


@dataclass
class Device:
    physical_id: PhysicalId
    cert: Path
    key: Path
    serial: str


@dataclass
class Broker:
    files: BrokerFiles
    port: int
    backend_port: int
    process: subprocess.Popen[bytes]
    workdir: Path
    pki: PkiService
    identity: IdentityService

    @property
    def cafile(self) -> Path:
        return self.files.device_cafile

    def device(self, name: str | None = None) -> Device:
        """A registered, active unit (bound to `name`) with a device certificate."""
        unit = self.identity.register(UnitSpec("RA-7", {}), actor=ACTOR).physical_id
        if name is not None:
            self.identity.create_logical(name, actor=ACTOR)
            self.identity.bind(name, unit, actor=ACTOR)
        self.identity.set_state(unit, DeviceState.ACTIVE, actor=ACTOR) if name else None
        return self.certify(unit)

    def certify(self, unit: str) -> Device:
        key = ec.generate_private_key(ec.SECP256R1())
        issued = self.pki.issue_from_csr(
            make_csr(key, common_name=unit), unit, Profile.DEVICE, actor=ACTOR
        )
        base = self.workdir / f"{unit}-{issued.serial_hex[:8]}"
        Path(f"{base}.pem").write_text(issued.pem)
        Path(f"{base}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return Device(PhysicalId(unit), Path(f"{base}.pem"), Path(f"{base}.key"), issued.serial_hex)

    def cli_args(self, device: Device) -> list[str]:
        return [
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "--cafile",
            str(self.cafile),
            "--cert",
            str(device.cert),
            "--key",
            str(device.key),
        ]

    def log(self) -> str:
        return (self.workdir / "mosquitto.log").read_text(errors="replace")


@pytest.fixture
def broker(pki: PkiService, hierarchy: Hierarchy, identity: IdentityService) -> Iterator[Broker]:
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_pub") is None:
        require_service("mosquitto", "mosquitto / mosquitto-clients not installed")
    # Mosquitto drops root to its own user: pytest's 0700 temp tree is out of its reach.
    workdir = Path(tempfile.mkdtemp(prefix="devicetrust-broker-"))
    os.chmod(workdir, 0o755)
    port, backend_port = free_port(), free_port()
    plan = BrokerPlan(
        host="127.0.0.1",
        port=port,
        backend_port=backend_port,
        ip_addresses=("127.0.0.1",),
        extra=("log_type all",),
    )
    written = write_mosquitto_config(pki, plan, workdir / "broker", actor=ACTOR)
    log = (workdir / "mosquitto.log").open("wb")
    process = subprocess.Popen(
        ["mosquitto", "-c", str(written.files.conf)], stdout=log, stderr=subprocess.STDOUT
    )
    broker = Broker(written.files, port, backend_port, process, workdir, pki, identity)
    try:
        _wait_listening(broker)
        yield broker
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_listening(broker: Broker) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if broker.process.poll() is not None:
            pytest.fail(f"mosquitto exited: {broker.log()}")
        try:
            for port in (broker.port, broker.backend_port):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.05)
            continue
        if broker.files.pid_file.exists():
            return
        time.sleep(0.05)
    pytest.fail(f"mosquitto did not start: {broker.log()}")


@pytest.fixture
def workers(broker: Broker, db: Database, clock: FixedClock) -> Iterator[WorkerFactory]:
    started: list[IngestWorker] = []

    def start(client_id: str = "ingest-1", *, follow: bool = True) -> IngestWorker:
        def follower(control: DynsecControl) -> RevocationFollower:
            return RevocationFollower(db, clock, broker.files, control, settle=timedelta(0))

        worker = IngestWorker(
            MessageStore(db, clock),
            FeedbackQueue(db, clock),
            BrokerConnection.from_files(broker.files, client_id),
            clock,
            housekeeping_seconds=0.05,
            follower_factory=follower if follow else None,
        )
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


WorkerFactory = Callable[..., IngestWorker]

"""The documented production path, command by command: `devicetrust gateway
mosquitto-config`, `mosquitto -c`, `devicetrust ingest`, a device with `mosquitto_pub`, and a
revocation with `devicetrust cert revoke`."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import Cli, clean_env
from tests.cli.pki_steps import device_csr, initialise, ok, register
from tests.conftest import free_port, require_service

from .clients import eventually


@pytest.fixture
def workdir() -> Iterator[Path]:
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_pub") is None:
        require_service("mosquitto", "mosquitto / mosquitto-clients not installed")
    path = Path(tempfile.mkdtemp(prefix="devicetrust-cli-broker-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def test_gateway_config_broker_ingest_and_revocation_from_the_command_line(
    workdir: Path,
) -> None:
    cli = Cli(cwd=workdir, env=clean_env())
    initialise(cli)
    ok(cli, "ca", "init")
    unit = register(cli)
    ok(cli, "identity", "create", "line-03-left-welding-12")
    ok(cli, "identity", "bind", "line-03-left-welding-12", unit)
    ok(cli, "device", "state", unit, "active")
    device_csr(cli, "device", f"/CN={unit}")
    issued = json.loads(
        ok(
            cli,
            "cert",
            "issue",
            "--csr",
            "device.csr",
            "--device",
            unit,
            "--out",
            "cert.pem",
            "--json",
        )
    )
    port, backend_port = free_port(), free_port()
    written = json.loads(
        ok(
            cli,
            "gateway",
            "mosquitto-config",
            "--out",
            "broker",
            "--ip",
            "127.0.0.1",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-port",
            str(backend_port),
            "--json",
        )
    )
    assert written["device_listener"] == f"127.0.0.1:{port}"
    broker = subprocess.Popen(
        ["mosquitto", "-c", written["config"]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ingest = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("devicetrust")),
            "ingest",
            "--broker-dir",
            "broker",
            "--client-id",
            "cli-1",
        ],
        cwd=workdir,
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert ingest.stderr is not None
        assert b"ingest running" in ingest.stderr.readline()

        def publish() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [
                    "mosquitto_pub",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "--cafile",
                    "broker/ca.pem",
                    "--cert",
                    "cert.pem",
                    "--key",
                    "device.key",
                    "-V",
                    "mqttv5",
                    "-q",
                    "1",
                    "-t",
                    f"devices/{unit}/diagnostics",
                    "-m",
                    '{"parts_per_hour": 118}',
                ],
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )

        assert publish().returncode == 0

        def stored() -> list[tuple[str, str]]:
            with sqlite3.connect(cli.db_path) as db:
                return db.execute(
                    "SELECT logical_name, physical_id FROM device_messages"
                ).fetchall()

        assert eventually(stored) == [("line-03-left-welding-12", unit)]
        ok(cli, "cert", "revoke", "--serial", issued["serial"], "--reason", "keyCompromise")
        assert eventually(lambda: publish().returncode != 0)
    finally:
        stop(ingest)
        stop(broker)

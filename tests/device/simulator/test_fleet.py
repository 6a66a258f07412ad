"""A real fleet against a real `devicetrust serve`: 20 arms provision over HTTPS, publish over
MQTT with mutual TLS, react to feedback sent through the API, and meet every fault; what the
fleet counted is checked against what the platform stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from devicetrust.device.simulator import Fault, FaultPlan, Fleet, FleetSummary, Rates
from tests.device.client.platform import Platform
from tests.device.simulator.conftest import fleet_units

DEVICES = 20


@pytest.fixture(scope="module")
def run(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    units = fleet_units(platform, DEVICES)
    workdir = tmp_path_factory.mktemp("fleet")
    plan = FaultPlan(frozenset(Fault), disconnect_every=0.5, outage=0.3)
    with Fleet(platform.url, platform.ca_bundle, units, workdir,
               rates=Rates(diagnostics=1.0, telemetry=2.0), faults=plan, seed=1) as fleet:
        fleet.provision()
        assert fleet.connect() == DEVICES
        fleet.run(1.5)
        slowed = fleet.devices[0]
        assert slowed.client is not None
        slowed_name = slowed.client.state.logical_name
        platform.api("POST", f"/v1/feedback/{slowed_name}", {"payload": {"command": "slow_down"}})
        fleet.run(1.5)
        names = {d.physical_id: d.client.state.logical_name
                 for d in fleet.devices if d.client is not None}
        speed = slowed.arm.speed
        summary = fleet.stop()
    return {"summary": summary, "names": names, "slowed": slowed_name, "speed": speed,
            "workdir": workdir}


def _stored(platform: Platform, names: dict[str, str]) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for physical_id, name in names.items():
        found += platform.api("GET", f"/v1/data/diagnostics/{name}?limit=1000")["items"]
        found += platform.api("GET", f"/v1/data/telemetry/{physical_id}?limit=1000")["items"]
    return found


def test_every_acknowledged_message_is_stored_once(
    platform: Platform, run: dict[str, object]
) -> None:
    summary = run["summary"]
    assert isinstance(summary, FleetSummary)
    assert summary.provisioned == DEVICES and summary.connected == DEVICES
    assert summary.published > DEVICES * 3
    assert summary.pending == 0 and summary.rejected == 0
    assert summary.acked == summary.published
    stored = _stored(platform, run["names"])  # type: ignore[arg-type]
    assert len(stored) == summary.acked
    assert len({m["message_key"] for m in stored}) == summary.acked  # redeliveries stored once
    assert summary.ack_latency_p50_ms is not None


def test_each_fault_had_its_expected_outcome(platform: Platform, run: dict[str, object]) -> None:
    summary = run["summary"]
    assert isinstance(summary, FleetSummary)
    assert summary.faults_unexpected == {}
    assert summary.faults_injected["clock-skew"] == 1
    assert summary.faults_injected["bad-cert"] == 1
    assert summary.faults_injected["disconnect"] >= 2
    assert summary.reconnects == summary.faults_injected["disconnect"]
    refusals = summary.refusals
    assert sum(n for code, n in refusals.items() if code.startswith("provisioning.")) == 1
    assert sum(refusals.values()) == 2  # and the impostor's
    stored = _stored(platform, run["names"])  # type: ignore[arg-type]
    assert not any(m["payload"].get("impostor") for m in stored)  # type: ignore[attr-defined]


def test_the_arm_slowed_down_and_acknowledged(platform: Platform, run: dict[str, object]) -> None:
    summary = run["summary"]
    assert isinstance(summary, FleetSummary)
    assert summary.feedback_received == summary.feedback_applied == 1
    assert run["speed"] == 0.5
    items = platform.api("GET", f"/v1/data/diagnostics/{run['slowed']}?limit=1000")["items"]
    assert {"ack": "slow_down", "speed": 0.5} in [m["payload"] for m in items]


def test_keys_never_reach_the_disk(run: dict[str, object]) -> None:
    """memory: keystores: a device's folder holds its state (no secret) and its encrypted
    buffer, and nothing else."""
    workdir = run["workdir"]
    assert isinstance(workdir, Path)
    names = {p.name for p in workdir.rglob("*") if p.is_file()}
    assert names <= {"device.json", "buffer.db", "buffer.db-wal", "buffer.db-shm"}
    assert "device.json" in names

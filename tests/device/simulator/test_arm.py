"""The robot arm's behaviour, the fault names and the counters: pure, no network."""

from __future__ import annotations

import random

import pytest

from devicetrust.device.simulator import JOINTS, Fault, RobotArm, parse_faults
from devicetrust.device.simulator._counters import FleetCounters


def _arm() -> RobotArm:
    return RobotArm(random.Random(7))


def test_diagnostics_report_parts_per_hour_at_the_current_speed() -> None:
    arm = _arm()
    fast = [arm.diagnostics()["parts_per_hour"] for _ in range(50)]
    arm.react({"command": "slow_down"})
    slow = [arm.diagnostics()["parts_per_hour"] for _ in range(50)]
    assert 38 < sum(fast) / 50 < 46
    assert 18 < sum(slow) / 50 < 24
    assert arm.parts_total == 100


def test_telemetry_is_the_torque_of_six_joints() -> None:
    torque = _arm().telemetry()["torque"]
    assert JOINTS == 6
    assert len(torque) == JOINTS
    assert all(isinstance(t, float) and t > 0 for t in torque)


def test_feedback_commands_change_the_speed_and_are_acknowledged() -> None:
    arm = _arm()
    reaction = arm.react({"command": "slow_down"})
    assert (reaction.command, arm.speed) == ("slow_down", 0.5)
    assert reaction.acknowledgement == {"ack": "slow_down", "speed": 0.5}
    for _ in range(10):
        arm.react({"command": "slow_down"})
    assert arm.speed == 0.1  # never stops
    arm.react({"command": "set_speed", "speed": 7})
    assert arm.speed == 1.0
    arm.react({"command": "set_speed", "speed": 0.3})
    assert arm.speed == 0.3
    arm.react({"command": "resume"})
    assert arm.speed == 1.0
    assert arm.commands_applied == 14


@pytest.mark.parametrize("body", [{"command": "explode"}, {"speed": 0.2}, [1, 2], "slow_down",
                                  {"command": "set_speed", "speed": "fast"}, None])
def test_anything_else_is_ignored(body: object) -> None:
    arm = _arm()
    reaction = arm.react(body)
    assert reaction.command is None and reaction.acknowledgement is None
    assert arm.speed == 1.0 and arm.commands_applied == 0


def test_fault_names() -> None:
    assert parse_faults("disconnect, bad-cert") == {Fault.DISCONNECT, Fault.BAD_CERT}
    assert parse_faults("") == frozenset()
    with pytest.raises(ValueError, match="unknown fault 'meteor'"):
        parse_faults("disconnect,meteor")


def test_summary_percentiles_and_rates() -> None:
    counters = FleetCounters(devices=2)
    counters.add("published", 100)
    counters.add("acked", 100)
    counters.latencies([i / 1000 for i in range(1, 101)])  # 1..100 ms
    counters.fault("bad-cert", as_expected=True)
    counters.refused("gateway.tls_refused")
    summary = counters.summary(connected=2, pending=0, rejected=0, elapsed=10.0,
                               resolution=0.02)
    assert (summary.ack_latency_p50_ms, summary.ack_latency_p99_ms) == (50.0, 99.0)
    assert summary.acked_per_second == 10.0
    data = summary.to_json()
    assert data["faults_as_expected"] == {"bad-cert": 1}
    assert data["refusals"] == {"gateway.tls_refused": 1}
    assert "2/2 connected" in summary.line()
    empty = FleetCounters(devices=0).summary(connected=0, pending=0, rejected=0, elapsed=0.0,
                                             resolution=0.02)
    assert empty.ack_latency_p50_ms is None and empty.acked_per_second == 0.0

"""The public surface of `devicetrust.device.simulator` is exactly what `__all__` lists, and
it imports no server module."""

from __future__ import annotations

import subprocess
import sys

import devicetrust.device.simulator as simulator

EXPECTED = {
    "JOINTS",
    "PER_PROCESS",
    "Fault",
    "FaultPlan",
    "Fleet",
    "FleetJob",
    "FleetSummary",
    "FleetUnit",
    "Rates",
    "Reaction",
    "RobotArm",
    "ShardFailed",
    "parse_faults",
    "run_sharded",
}


def test_all_is_the_public_surface() -> None:
    assert set(simulator.__all__) == EXPECTED
    assert {name for name in vars(simulator) if not name.startswith("_")} == EXPECTED


def test_the_simulator_loads_no_server_dependency() -> None:
    code = ("import sys, devicetrust.device.simulator; "
            "print(sorted(m for m in ('fastapi', 'sqlalchemy', 'uvicorn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"

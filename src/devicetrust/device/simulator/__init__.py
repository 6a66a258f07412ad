"""The fleet simulator (docs/simulator.md): many simulated robot arms in one process, each a
real device-SDK client with its own connection, publishing diagnostics and telemetry,
reacting to feedback, with injected faults whose outcomes are checked and counted.

    units = [FleetUnit(physical_id, device_key) for ...]      # what the factory flashed
    with Fleet(api_url, "platform-ca.pem", units, workdir,
               faults=FaultPlan(parse_faults("disconnect,bad-cert"))) as fleet:
        fleet.provision()
        fleet.run(30, on_summary=lambda s: print(s.line()))
        print(fleet.stop().to_json())

Device side only: keys live in `memory:` keystores, the platform is reached over HTTPS and
MQTT; no server module is imported. Past `PER_PROCESS` devices (paho's `select()` loop
cannot watch file descriptors above 1023), `run_sharded(FleetJob(...))` spreads the fleet
over spawned processes and merges their counters.
"""

from devicetrust.device.simulator._arm import JOINTS, Reaction, RobotArm
from devicetrust.device.simulator._counters import FleetSummary
from devicetrust.device.simulator._device import FleetUnit, Rates
from devicetrust.device.simulator._faults import Fault, parse_faults
from devicetrust.device.simulator._fleet import FaultPlan, Fleet
from devicetrust.device.simulator._shards import PER_PROCESS, FleetJob, ShardFailed, run_sharded

__all__ = [
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
]

"""`RobotArm`: what one simulated welding arm says and how it reacts, as pure behaviour.

No I/O and no clock of its own: the fleet asks it for the next diagnostics (parts per hour,
filed under the logical identity) and telemetry (torque per joint, 6 joints, filed under the
physical unit) and hands it the feedback the platform sent. Its noise comes from a
`random.Random` the caller seeds: it is simulated sensor data, never a secret.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JOINTS = 6
NOMINAL_PARTS_PER_HOUR = 42.0
MIN_SPEED, MAX_SPEED = 0.1, 1.0
_SLOW_DOWN_FACTOR = 0.5
_NOMINAL_TORQUE = (38.0, 52.0, 31.0, 12.0, 8.0, 4.0)  # N·m, shoulder to wrist


@dataclass(frozen=True)
class Reaction:
    """What the arm did with one feedback message: the `command` it understood (None when
    it ignored the message) and the acknowledgement it publishes as diagnostics."""

    command: str | None
    acknowledgement: dict[str, Any] | None


@dataclass
class RobotArm:
    """One arm's production state. `speed` (0.1-1.0) scales both the parts per hour and the
    publication rates; `slow_down` halves it, `resume` restores it, `set_speed` sets it."""

    rng: random.Random = field(default_factory=random.Random)
    speed: float = MAX_SPEED
    parts_total: int = 0
    commands_applied: int = 0

    def diagnostics(self) -> dict[str, Any]:
        """Parts per hour around the nominal rate at the current speed."""
        rate = max(0.0, self.rng.gauss(NOMINAL_PARTS_PER_HOUR * self.speed, 1.5))
        self.parts_total += 1
        return {"parts_per_hour": round(rate, 1), "speed": self.speed,
                "parts_total": self.parts_total}

    def telemetry(self) -> dict[str, Any]:
        """Torque per joint (N·m), noisy around each joint's nominal load at this speed."""
        load = 0.6 + 0.4 * self.speed
        return {"torque": [round(self.rng.gauss(nominal * load, nominal * 0.03), 2)
                           for nominal in _NOMINAL_TORQUE]}

    def react(self, feedback: object) -> Reaction:
        """Apply a feedback message (its decoded JSON body). Understood: `{"command":
        "slow_down"}`, `{"command": "resume"}`, `{"command": "set_speed", "speed": 0.5}`;
        anything else is ignored (no acknowledgement)."""
        if not isinstance(feedback, Mapping):
            return Reaction(None, None)
        command = feedback.get("command")
        if command == "slow_down":
            self.speed = max(MIN_SPEED, round(self.speed * _SLOW_DOWN_FACTOR, 3))
        elif command == "resume":
            self.speed = MAX_SPEED
        elif command == "set_speed" and isinstance(feedback.get("speed"), int | float):
            self.speed = min(MAX_SPEED, max(MIN_SPEED, float(feedback["speed"])))
        else:
            return Reaction(None, None)
        self.commands_applied += 1
        return Reaction(command, {"ack": command, "speed": self.speed})

"""A demo unit as a real device: the device SDK (`devicetrust.device.client`) over the network.

Provisioning is the SDK's HTTPS client with X.509 attestation (the birth key in the unit's
keystore signs the server's nonce); the data plane is the SDK's `DeviceClient` (MQTT 5, TLS
1.3, mutual TLS with the operational key from the keystore). Nothing here imports a server
module's internals or touches the database: what the demo shows of the server's side it
reads through the platform, in the scenario.

The `DeviceClient` is built without an attestation on purpose: a refused unit must not
re-provision itself (unit A's enrollment could take its name back from B).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from devicetrust.cli.demo_factory import Unit
from devicetrust.cli.demo_narration import DemoFailed, wait_until
from devicetrust.device.client import (
    ConnectRefused,
    DeviceClient,
    DeviceClientError,
    DeviceState,
    X509Attestation,
    provision,
)
from devicetrust.device.simulator import RobotArm
from devicetrust.domain.clock import Clock

TIMEOUT_SECONDS = 20.0
CLOSE_POLL_SECONDS = 0.005


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What the unit got from the platform (read from its own state file)."""

    logical_name: str | None
    serial: int
    not_after: datetime
    mqtt_host: str
    mqtt_port: int


@dataclass(frozen=True, slots=True)
class Closed:
    """When the unit saw its connection end."""

    at: datetime


class DemoDevice:
    def __init__(self, unit: Unit, *, api_url: str, ca_file: Path, clock: Clock) -> None:
        self._unit = unit
        self._api_url = api_url
        self._ca_file = ca_file
        self._clock = clock
        self._state: DeviceState | None = None
        self._client: DeviceClient | None = None
        self._watch: threading.Thread | None = None
        self._closed_at: datetime | None = None
        # What the arm reports and how it obeys feedback: the fleet simulator's model
        # (parts per hour; torque of its 6 joints), seeded per unit (sensor data, no secret).
        self.arm = RobotArm(random.Random(unit.physical_id))  # noqa: S311

    @property
    def certificate_serial(self) -> int:
        return int(self._provisioned_state().certificate.serial_number)

    def provision(self) -> Provisioned:
        """Challenge, then register with the birth-key signature and a CSR made in the
        keystore, over HTTPS; the SDK keeps the answer in `<unit folder>/device.json`."""
        unit = self._unit
        attestation = X509Attestation(unit.birth_key, unit.birth_file.read_text())
        try:
            state = provision(
                self._api_url,
                unit.physical_id,
                attestation,
                keystore=unit.keystore,
                data_dir=unit.folder,
                ca_bundle=self._ca_file,
                max_wait=TIMEOUT_SECONDS,
            )
        except DeviceClientError as exc:
            raise DemoFailed(f"unit {unit.letter} could not provision: {exc}") from exc
        self._state = state
        return Provisioned(
            state.logical_name,
            int(state.certificate.serial_number),
            state.not_after,
            state.mqtt_host,
            state.mqtt_port,
        )

    def connect(self) -> None:
        unit = self._unit
        self._provisioned_state()
        client = DeviceClient(unit.folder, unit.keystore, self._ca_file)
        self._client = client
        if not client.connect(timeout=TIMEOUT_SECONDS):
            raise DemoFailed(f"unit {unit.letter} could not connect: {client.last_error}")

    def publish(self, stream: str, payload: dict[str, Any]) -> None:
        """One message, QoS 1; returns once the gateway acknowledged it (after its commit)."""
        client = self._connected()
        if stream == "diagnostics":
            client.publish_diagnostics(payload)
        else:
            client.publish_telemetry(payload)
        if not client.flush(TIMEOUT_SECONDS):
            raise DemoFailed(f"unit {self._unit.letter}'s {stream} was not acknowledged")
        if client.rejected:
            raise DemoFailed(f"the gateway refused unit {self._unit.letter}'s {stream}")

    def wait_feedback(self) -> object:
        """The next feedback message the unit received, decoded."""
        got = self._connected().feedback(timeout=TIMEOUT_SECONDS)
        if got is None:
            raise DemoFailed(f"unit {self._unit.letter} received no feedback")
        return got.json()

    def watch_closed(self) -> None:
        """Start noting, on a thread, the moment the unit sees its connection end."""
        client = self._connected()
        self._closed_at = None
        self._watch = threading.Thread(
            target=self._note_close, args=(client,), name="demo-close-watch", daemon=True
        )
        self._watch.start()

    def wait_closed(self) -> Closed:
        """Until the unit saw its connection closed by the gateway (`watch_closed` first)."""
        if self._watch is not None:
            self._watch.join(TIMEOUT_SECONDS)
        if self._closed_at is None:
            raise DemoFailed(f"unit {self._unit.letter}'s connection was not closed")
        return Closed(self._closed_at)

    def _note_close(self, client: DeviceClient) -> None:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while client.connected and time.monotonic() < deadline:
            time.sleep(CLOSE_POLL_SECONDS)
        if not client.connected:
            self._closed_at = self._clock.now()

    def refused_reconnect(self) -> int:
        """The unit reconnects on its own once dropped: the gateway's CONNACK reason code
        for that attempt. The unit is then switched off (its client closed)."""
        client = self._connected()
        refusal = wait_until(
            f"unit {self._unit.letter}'s reconnection attempt",
            lambda: client.last_error if isinstance(client.last_error, ConnectRefused) else None,
        )
        self.close()
        return refusal.reason

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _provisioned_state(self) -> DeviceState:
        if self._state is None:
            raise DemoFailed(f"unit {self._unit.letter} is not provisioned")
        return self._state

    def _connected(self) -> DeviceClient:
        if self._client is None:
            raise DemoFailed(f"unit {self._unit.letter} is not connected")
        return self._client

"""`SimulatedDevice`: one simulated unit's life: its `memory:` keystore with the provisioning
key the factory flashed, provisioning over HTTPS, a real `DeviceClient` (MQTT 5, mTLS,
offline buffer), and the `RobotArm` that decides what it publishes and how it reacts.

Driven by the fleet's single tick thread (`tick`); paho's thread only queues feedback here.
Never holds the provisioning key outside the keystore (the caller's copy is wiped by it).
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from devicetrust.device.client import (
    DeviceClient,
    DeviceClientError,
    Feedback,
    ProvisioningRefused,
    SymmetricKeyAttestation,
    provision,
)
from devicetrust.device.keystore import Keystore, open_keystore
from devicetrust.device.simulator._arm import RobotArm
from devicetrust.device.simulator._counters import FleetCounters
from devicetrust.device.simulator._faults import CLOCK_SKEW, SkewedClock

PROVISIONING_LABEL = "provisioning-key"
_log = logging.getLogger(__name__)


@dataclass
class FleetUnit:
    """A unit as the factory made it: its physical id and its provisioning key (wiped once
    sealed in the device's keystore)."""

    physical_id: str
    provisioning_key: bytearray = field(repr=False)


@dataclass(frozen=True)
class Rates:
    """Messages per second per device at full speed (a slowed-down arm publishes less)."""

    diagnostics: float = 0.2
    telemetry: float = 1.0


class SimulatedDevice:
    def __init__(self, unit: FleetUnit, folder: Path, api_url: str, ca_bundle: Path,
                 arm: RobotArm, counters: FleetCounters, rates: Rates) -> None:
        self.physical_id = unit.physical_id
        self.folder = folder
        self._api_url = api_url
        self._ca_bundle = ca_bundle
        self.arm = arm
        self._counters = counters
        self._rates = rates
        self.keystore: Keystore = open_keystore(f"memory:{unit.physical_id}")
        try:
            self.keystore.seal(PROVISIONING_LABEL, unit.provisioning_key)
        finally:
            unit.provisioning_key[:] = bytes(len(unit.provisioning_key))
        self._attestation = SymmetricKeyAttestation(self.keystore)
        self.client: DeviceClient | None = None
        self._inbox: deque[object] = deque()
        self._sent_at: deque[float] = deque()  # publish times of messages not yet seen acked
        self._published = 0
        self._rejected_before = 0  # refusals counted by clients replaced since
        self._next_diagnostics = 0.0
        self._next_telemetry = 0.0
        self._outage_until: float | None = None
        self._reconnecting = False

    # ---- provisioning --------------------------------------------------------------------

    def provision(self, *, skewed: bool = False) -> None:
        """Provision over HTTPS. With `skewed`, first with a clock 15 minutes behind: that
        attempt must be refused (counted), then again with the right time."""
        if skewed:
            try:
                self._provision(SkewedClock(CLOCK_SKEW))
            except ProvisioningRefused as exc:
                self._counters.refused(exc.code)
                self._counters.fault("clock-skew", as_expected=True)
            else:
                self._counters.fault("clock-skew", as_expected=False)
                return
        self._provision(None)

    def _provision(self, clock: SkewedClock | None) -> None:
        provision(self._api_url, self.physical_id, self._attestation, keystore=self.keystore,
                  data_dir=self.folder, ca_bundle=self._ca_bundle, clock=clock, max_wait=60)
        self._counters.add("provisioned")

    # ---- data plane ----------------------------------------------------------------------

    def start(self) -> None:
        """Open the client and let it connect (in its own threads)."""
        self.client = self._new_client()
        self.client.start()

    def schedule(self, now: float) -> None:
        """Start publishing: each stream at a random phase of its period (no bursts)."""
        self._next_diagnostics = now + self.arm.rng.uniform(0, self._interval("diagnostics"))
        self._next_telemetry = now + self.arm.rng.uniform(0, self._interval("telemetry"))

    def _new_client(self) -> DeviceClient:
        return DeviceClient(self.folder, self.keystore, self._ca_bundle,
                            attestation=self._attestation, on_feedback=self._arrived)

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.connected and self._outage_until is None

    @property
    def pending(self) -> int:
        return 0 if self.client is None else self.client.pending

    @property
    def settled(self) -> bool:
        """Nothing left to deliver and no outage or reconnection under way."""
        return self.pending == 0 and self._outage_until is None and not self._reconnecting

    @property
    def rejected(self) -> int:
        return self._rejected_before + (0 if self.client is None else self.client.rejected)

    @property
    def ca_bundle(self) -> Path:
        return self._ca_bundle

    def tick(self, now: float, *, publish: bool = True) -> None:
        """End an outage that is over, apply feedback, publish what is due (unless not
        `publish`: the fleet is draining) and account acknowledgements."""
        client = self.client
        if client is None:
            return
        if self._outage_until is not None and now >= self._outage_until:
            self._outage_until = None
            self._reconnecting = True
            client.start()
        if self._reconnecting and client.connected:
            self._reconnecting = False
            self._counters.fault("disconnect", as_expected=True)
        while self._inbox:
            reaction = self.arm.react(self._inbox.popleft())
            if reaction.acknowledgement is not None:
                self._counters.add("feedback_applied")
                self._publish(client, "diagnostics", reaction.acknowledgement, now)
        if publish and now >= self._next_diagnostics:
            self._publish(client, "diagnostics", self.arm.diagnostics(), now)
            self._next_diagnostics = now + self._interval("diagnostics")
        if publish and now >= self._next_telemetry:
            self._publish(client, "telemetry", self.arm.telemetry(), now)
            self._next_telemetry = now + self._interval("telemetry")
        self._account(client, now)

    def _interval(self, stream: str) -> float:
        rate = self._rates.diagnostics if stream == "diagnostics" else self._rates.telemetry
        return float("inf") if rate <= 0 else 1.0 / (rate * self.arm.speed)

    def _publish(self, client: DeviceClient, stream: str, body: dict[str, object],
                 now: float) -> None:
        if stream == "diagnostics":
            client.publish_diagnostics(body)
        else:
            client.publish_telemetry(body)
        self._published += 1
        self._sent_at.append(now)
        self._counters.add("published")

    def _account(self, client: DeviceClient, now: float) -> None:
        """Messages leave the buffer in order at their PUBACK: as many as left since the last
        tick are the oldest sent."""
        acked = len(self._sent_at) - client.pending
        if acked > 0:
            self._counters.latencies([now - self._sent_at.popleft() for _ in range(acked)])
            self._counters.add("acked", acked)

    def _arrived(self, feedback: Feedback) -> None:
        """On paho's thread: keep it for the tick thread."""
        self._counters.add("feedback_received")
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            self._inbox.append(feedback.json())

    # ---- faults --------------------------------------------------------------------------

    def disconnect(self, now: float, outage: float) -> None:
        """Lose the connection for `outage` seconds: the client stops (unacknowledged
        messages stay in the buffer) and a new one takes over, buffering until it starts."""
        if self.client is None or self._outage_until is not None:
            return
        self._rejected_before += self.client.rejected
        self.client.close()
        self.client = self._new_client()
        self._outage_until = now + outage
        self._counters.add("reconnects")

    def close(self) -> None:
        if self._reconnecting or self._outage_until is not None:
            self._counters.fault("disconnect", as_expected=False)  # never came back
        if self.client is not None:
            try:
                self.client.close()
            except DeviceClientError as exc:
                _log.warning("device %s: close: %s", self.physical_id, exc.code)
        self.keystore.close()

"""`Fleet`: N simulated robot arms in one process, each a real `DeviceClient` with its own
connection, driven by one tick thread (publishing, feedback, acknowledgement accounting,
faults) while each client's worker and paho threads do the network.

    with Fleet(api_url, ca_bundle, units, workdir, rates=Rates(0.2, 1.0)) as fleet:
        fleet.provision(progress=lambda done, total: ...)
        fleet.run(30, on_summary=lambda s: print(s.line()))
        summary = fleet.stop()

Device side only: talks to the platform over HTTPS and MQTT, imports no server module.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from devicetrust.device.client import DeviceClient, DeviceClientError
from devicetrust.device.keystore import open_keystore
from devicetrust.device.simulator._arm import RobotArm
from devicetrust.device.simulator._counters import FleetCounters, FleetSummary
from devicetrust.device.simulator._device import FleetUnit, Rates, SimulatedDevice
from devicetrust.device.simulator._faults import Fault, write_impostor_state

TICK_SECONDS = 0.02
IMPOSTOR_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class FaultPlan:
    """Which faults, and how often: `disconnect_every` seconds one random connected device
    loses its connection for `outage` seconds; `share` of the devices (at least one) meet
    a skewed clock at provisioning and an impostor with a foreign certificate."""

    faults: frozenset[Fault] = frozenset()
    disconnect_every: float = 2.0
    outage: float = 0.5
    share: float = 0.05

    def count(self, devices: int) -> int:
        return 0 if devices == 0 else max(1, round(devices * self.share))


class Fleet:
    def __init__(self, api_url: str, ca_bundle: Path | str, units: Iterable[FleetUnit],
                 workdir: Path | str, *, rates: Rates | None = None,
                 faults: FaultPlan | None = None, seed: int | None = None,
                 concurrency: int = 16) -> None:
        self._rng = random.Random(seed)  # noqa: S311 -- simulation choices, not secrets
        self._plan = faults or FaultPlan()
        self._concurrency = concurrency
        self._workdir = Path(workdir)
        units = list(units)
        self.counters = FleetCounters(len(units))
        self.devices = [
            SimulatedDevice(unit, self._workdir / unit.physical_id, api_url, Path(ca_bundle),
                            RobotArm(random.Random(self._rng.random())),  # noqa: S311
                            self.counters,
                            rates or Rates())
            for unit in units
        ]
        self._started = 0.0
        self._stopped: float | None = None
        self._lock = threading.Lock()  # the tick thread vs. run()/stop() callers
        self._impostors: list[threading.Thread] = []

    # ---- provisioning --------------------------------------------------------------------

    def provision(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Provision every device (`concurrency` at a time); a refusal other than an
        expected fault is counted under its code and that device stays off the line."""
        skewed = set(self._chosen(Fault.CLOCK_SKEW))
        total, done, started = len(self.devices), 0, time.monotonic()
        with ThreadPoolExecutor(max_workers=self._concurrency,
                                thread_name_prefix="provision") as pool:
            futures = {pool.submit(d.provision, skewed=d.physical_id in skewed): d
                       for d in self.devices}
            for future in as_completed(futures):
                error = future.exception()
                if isinstance(error, DeviceClientError):
                    self.counters.refused(error.code)
                    futures[future].keystore.close()
                    self.devices.remove(futures[future])
                elif error is not None:
                    raise error
                done += 1
                if progress is not None:
                    progress(done, total)
        self.counters.add("provisioning_ms", round((time.monotonic() - started) * 1000))

    def _chosen(self, fault: Fault) -> list[str]:
        if fault not in self._plan.faults:
            return []
        count = self._plan.count(len(self.devices))
        return [d.physical_id for d in self._rng.sample(self.devices, count)]

    # ---- running -------------------------------------------------------------------------

    def connect(self, progress: Callable[[int, int], None] | None = None,
                timeout: float = 300.0) -> int:
        """Connect every provisioned device, at most `concurrency` connecting at a time (a
        plant powering up in waves rather than a thundering herd); returns how many are
        connected when all are, or at `timeout`."""
        started = time.monotonic()
        waiting, connecting = list(self.devices), list[SimulatedDevice]()
        total, deadline = len(waiting), started + timeout
        while (waiting or connecting) and time.monotonic() < deadline:
            while waiting and len(connecting) < self._concurrency:
                device = waiting.pop()
                device.start()
                connecting.append(device)
            connecting = [d for d in connecting if not d.connected]
            if progress is not None:
                progress(total - len(waiting) - len(connecting), total)
            time.sleep(TICK_SECONDS)
        for device in waiting:  # out of time: they keep trying on their own
            device.start()
        self.counters.add("connecting_ms", round((time.monotonic() - started) * 1000))
        return sum(d.connected for d in self.devices)

    def run(self, duration: float, on_summary: Callable[[FleetSummary], None] | None = None,
            every: float = 1.0) -> None:
        """Drive the fleet for `duration` seconds (connecting it first if `connect` was not
        called), calling `on_summary` every `every` seconds."""
        if not self._started:
            if any(d.client is None for d in self.devices):
                self.connect()
            self._started = time.monotonic()
            for device in self.devices:
                device.schedule(self._started)
            self._send_impostors()
        now = time.monotonic()
        end, next_summary = now + duration, now + every
        next_fault = now + self._plan.disconnect_every
        while (now := time.monotonic()) < end:
            with self._lock:
                for device in self.devices:
                    device.tick(now)
                if Fault.DISCONNECT in self._plan.faults and now >= next_fault:
                    self._disconnect_one(now)
                    next_fault = now + self._plan.disconnect_every
            if on_summary is not None and now >= next_summary:
                on_summary(self.summary())
                next_summary = now + every
            time.sleep(TICK_SECONDS)

    def _disconnect_one(self, now: float) -> None:
        connected = [d for d in self.devices if d.connected]
        if connected:
            self._rng.choice(connected).disconnect(now, self._plan.outage)

    def _send_impostors(self) -> None:
        for physical_id in self._chosen(Fault.BAD_CERT):
            device = next(d for d in self.devices if d.physical_id == physical_id)
            thread = threading.Thread(target=self._impostor, args=(device,), daemon=True,
                                      name=f"impostor-{physical_id[:8]}")
            thread.start()
            self._impostors.append(thread)

    def _impostor(self, device: SimulatedDevice) -> None:
        """Present a foreign certificate for `device`'s unit: must not connect."""
        if device.client is None:
            return
        folder = device.folder.parent / f"{device.physical_id}.impostor"
        keystore = open_keystore(f"memory:impostor-{device.physical_id}")
        try:
            write_impostor_state(device.client.state, keystore.create_key("foreign"), folder)
            client = DeviceClient(folder, keystore, device.ca_bundle)
            try:
                client.publish_diagnostics({"impostor": True})
                client.start()
                # Accepted means acknowledged: nothing the impostor sent may be stored.
                accepted = client.flush(timeout=IMPOSTOR_WAIT_SECONDS)
                error = client.last_error
            finally:
                client.close()
        finally:
            keystore.close()
        if not accepted:
            self.counters.refused(error.code if error is not None else "gateway.tls_refused")
        self.counters.fault("bad-cert", as_expected=not accepted)

    # ---- the end -------------------------------------------------------------------------

    def stop(self, flush_timeout: float = 30.0) -> FleetSummary:
        """Let every device deliver what it buffered and come back from an outage (up to
        `flush_timeout`), then take the final summary and close the devices."""
        deadline = time.monotonic() + flush_timeout
        for thread in self._impostors:
            thread.join(timeout=IMPOSTOR_WAIT_SECONDS * 2)
        while time.monotonic() < deadline:
            with self._lock:
                now = time.monotonic()
                for device in self.devices:
                    device.tick(now, publish=False)
                if all(d.settled for d in self.devices):
                    break
            time.sleep(TICK_SECONDS)
        self._stopped = time.monotonic()
        summary = self.summary()
        self.close()
        return summary

    def latencies(self) -> list[float]:
        """Every acknowledgement latency sampled so far, in seconds."""
        return self.counters.latency_samples()

    def logical_names(self) -> list[str]:
        """The logical identities the provisioned devices hold now."""
        with self._lock:
            states = [d.client.state for d in self.devices if d.client is not None]
        return [s.logical_name for s in states if s.logical_name is not None]

    def summary(self) -> FleetSummary:
        end = self._stopped or time.monotonic()
        with self._lock:
            devices = list(self.devices)
        return self.counters.summary(
            connected=sum(d.connected for d in devices),
            pending=sum(d.pending for d in devices),
            rejected=sum(d.rejected for d in devices),
            elapsed=end - self._started if self._started else 0.0,
            resolution=TICK_SECONDS,
        )

    def close(self) -> None:
        with self._lock:
            devices, self.devices = self.devices, []
        for device in devices:
            device.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

"""Running a large fleet in several processes, `PER_PROCESS` devices each.

Why: paho-mqtt's network loop waits with `select()`, which cannot watch a file descriptor
numbered 1024 or more, and each simulated device holds about six (its socket, paho's wake-up
socket pair, its buffer's SQLite files), so one process tops out near 170 devices. Each shard
is a spawned process (never forked: the parent may run a server's threads) that provisions
and connects its devices, waits until every shard is ready, runs for the same `duration`
and reports back; the parent merges the counters (exact percentiles from all samples).

Provisioning keys reach a shard through the process pipe only, and the parent's copies are
wiped once the shards started.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue as queue_mod
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from devicetrust.device.simulator._counters import FleetSummary, merge
from devicetrust.device.simulator._device import FleetUnit, Rates
from devicetrust.device.simulator._fleet import FaultPlan, Fleet

PER_PROCESS = 120
READY_TIMEOUT = 900.0
_POLL = 0.25


@dataclass(frozen=True)
class FleetJob:
    """One run: where the platform is, the units, the rates and the faults."""

    api_url: str
    ca_bundle: str
    units: list[FleetUnit]
    workdir: str
    duration: float
    rates: Rates = field(default_factory=Rates)
    faults: FaultPlan = field(default_factory=FaultPlan)
    seed: int | None = None
    concurrency: int = 16


class ShardFailed(RuntimeError):
    """A shard process ended without its final report."""


def run_sharded(
    job: FleetJob, *, per_process: int = PER_PROCESS,
    on_progress: Callable[[str, int, int], None] | None = None,
    on_summary: Callable[[FleetSummary], None] | None = None,
    at_half: Callable[[list[str]], None] | None = None,
) -> FleetSummary:
    """Run `job` over ceil(units / per_process) processes; `on_progress(phase, done, total)`
    for `provisioning` and `connecting`, `on_summary` about every second while running,
    `at_half(logical names)` once half of `duration` has passed. Returns the merged summary."""
    count = max(1, -(-len(job.units) // per_process))
    context = multiprocessing.get_context("spawn")
    events: multiprocessing.Queue[tuple[Any, ...]] = context.Queue()
    go = context.Event()
    processes = []
    for index in range(count):
        shard = replace(job, units=job.units[index::count],
                        workdir=str(Path(job.workdir) / f"shard-{index}"),
                        seed=None if job.seed is None else job.seed + index)
        process = context.Process(target=_shard_main, args=(shard, index, events, go),
                                  name=f"fleet-shard-{index}", daemon=True)
        process.start()
        processes.append(process)
    for unit in job.units:  # the shards have their copies
        unit.provisioning_key[:] = bytes(len(unit.provisioning_key))
    try:
        return _follow(processes, events, go, job, on_progress, on_summary, at_half)
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()


def _follow(processes: list[Any], events: multiprocessing.Queue[tuple[Any, ...]], go: Event,
            job: FleetJob, on_progress: Callable[[str, int, int], None] | None,
            on_summary: Callable[[FleetSummary], None] | None,
            at_half: Callable[[list[str]], None] | None) -> FleetSummary:
    state = _Follower(len(processes), len(job.units), on_progress, on_summary)
    half_at: float | None = None
    deadline = time.monotonic() + READY_TIMEOUT
    while len(state.finals) < len(processes):
        with contextlib.suppress(queue_mod.Empty):
            state.handle(events.get(timeout=_POLL))
        if half_at is None and state.all_ready and not go.is_set():
            go.set()
            half_at = time.monotonic() + job.duration / 2
        if half_at is not None and time.monotonic() >= half_at:
            half_at = float("inf")
            if at_half is not None:
                at_half(sorted(state.names))
        dead = [p for i, p in enumerate(processes) if i not in state.finals and not p.is_alive()]
        if dead and events.empty():
            raise ShardFailed(f"{dead[0].name} ended with status {dead[0].exitcode}")
        if not go.is_set() and time.monotonic() > deadline:
            raise ShardFailed("the shards were not ready in time")
    finals = [state.finals[i] for i in sorted(state.finals)]
    return merge([f[0] for f in finals], [s for f in finals for s in f[1]])


class _Follower:
    """What the parent knows of its shards, from their events."""

    def __init__(self, count: int, total: int,
                 on_progress: Callable[[str, int, int], None] | None,
                 on_summary: Callable[[FleetSummary], None] | None) -> None:
        self._count, self._total = count, total
        self._on_progress, self._on_summary = on_progress, on_summary
        self._done: dict[str, dict[int, int]] = {"provisioning": {}, "connecting": {}}
        self._ready: set[int] = set()
        self._latest: dict[int, FleetSummary] = {}
        self.names: list[str] = []
        self.finals: dict[int, tuple[FleetSummary, list[float]]] = {}

    @property
    def all_ready(self) -> bool:
        return len(self._ready) == self._count

    def handle(self, event: tuple[Any, ...]) -> None:
        kind, index, *payload = event
        if kind in self._done:
            self._done[kind][index] = payload[0]
            if self._on_progress is not None:
                self._on_progress(kind, sum(self._done[kind].values()), self._total)
        elif kind == "ready":
            self._ready.add(index)
            self.names.extend(payload[0])
        elif kind == "summary":
            self._latest[index] = payload[0]
            if self._on_summary is not None and len(self._latest) == self._count:
                self._on_summary(merge(list(self._latest.values())))
        elif kind == "final":
            self.finals[index] = (payload[0], payload[1])
        elif kind == "failed":
            raise ShardFailed(f"fleet shard {index} failed: {payload[0]}")


def _shard_main(job: FleetJob, index: int, events: multiprocessing.Queue[tuple[Any, ...]],
                go: Event) -> None:
    """In a shard process: provision, connect, wait for every shard, run, report."""
    logging.getLogger("devicetrust.device").setLevel(logging.ERROR)  # counted instead
    try:
        with Fleet(job.api_url, job.ca_bundle, job.units, job.workdir, rates=job.rates,
                   faults=job.faults, seed=job.seed, concurrency=job.concurrency) as fleet:
            fleet.provision(lambda done, _total: events.put(("provisioning", index, done)))
            fleet.connect(lambda done, _total: events.put(("connecting", index, done)))
            events.put(("ready", index, fleet.logical_names()))
            go.wait()
            fleet.run(job.duration, on_summary=lambda s: events.put(("summary", index, s)))
            latencies = fleet.latencies()
            summary = fleet.stop()
            events.put(("final", index, summary, latencies))
    except Exception as exc:  # reported to the parent, which raises ShardFailed
        events.put(("failed", index, f"{type(exc).__name__}: {exc}"))
        raise

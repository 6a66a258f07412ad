"""`devicetrust simulate`: a fleet of simulated robot arms against a server started in this
process (the demo's setup: the configured data directory, loopback ports free now).

The factory steps run here, server side: the units are registered in one batch, and each
line gets a symmetric-key group enrollment whose pool names are
`{site}-line-{NN}-arm-{NNN}`; each unit's provisioning key, HMAC-SHA256(group key, physical
id), is handed to its simulated device (`devicetrust.device.simulator`), which seals it in
its `memory:` keystore; the group keys are wiped at once and never shown. Everything after
that goes over the network: HTTPS provisioning, MQTT 5 with mutual TLS, feedback.

Device state files (no secret) live in a temporary directory removed at the end; the
registry, the enrollments, the stored messages and the audit trail stay in the data
directory, like the demo's.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from devicetrust.cli import output
from devicetrust.cli.context import state
from devicetrust.cli.demo_factory import allow_software_keys
from devicetrust.cli.demo_setup import open_demo
from devicetrust.cli.embedded_server import EmbeddedServer
from devicetrust.device.simulator import (
    FaultPlan,
    FleetJob,
    FleetSummary,
    FleetUnit,
    Rates,
    ShardFailed,
    parse_faults,
    run_sharded,
)
from devicetrust.domain.errors import DeviceTrustError, InvalidInput
from devicetrust.identity import UnitSpec
from devicetrust.ingest.feedback import FeedbackQueue
from devicetrust.provisioning import Allocation, AllocationPolicy
from devicetrust.runtime import Platform

__all__ = ["simulate"]

MODEL = "RA-7 welding arm (simulated)"
MAX_DEVICES = 10_000
MAX_LINES = 99
SLOW_DOWN = {"command": "slow_down"}
EXAMPLES = output.example(
    "devicetrust simulate --devices 50 --duration 20",
    "devicetrust simulate --devices 500 --site plant-1 --lines 4 \\",
    "  --rate-diagnostics 0.2 --rate-telemetry 1 --duration 60",
    "devicetrust simulate -n 20 --faults disconnect,clock-skew,bad-cert --json",
)


def simulate(
    ctx: typer.Context,
    devices: Annotated[int, typer.Option("--devices", "-n", help="How many arms.")] = 20,
    site: Annotated[str, typer.Option("--site", help="Site prefix of the names.")] = "plant-1",
    lines: Annotated[int, typer.Option("--lines", help="Assembly lines (one group each).")] = 4,
    rate_diagnostics: Annotated[
        float, typer.Option("--rate-diagnostics", help="Diagnostics per second per arm.")
    ] = 0.2,
    rate_telemetry: Annotated[
        float, typer.Option("--rate-telemetry", help="Telemetry per second per arm.")
    ] = 1.0,
    duration: Annotated[float, typer.Option("--duration", help="Seconds to run.")] = 30.0,
    faults: Annotated[
        str, typer.Option("--faults", help="Comma-separated: disconnect, clock-skew, bad-cert.")
    ] = "",
    seed: Annotated[int | None, typer.Option("--seed", help="Repeat a run's choices.")] = None,
    as_json: output.JsonFlag = False,
) -> None:
    """Run simulated robot arms: provision, connect, publish, react to feedback, faults.

    Each arm is a real device client with its own TLS connection; the run ends with every
    message acknowledged (or counted as pending) and prints the counters."""
    plan = _plan(devices, site, lines, rate_diagnostics, rate_telemetry, duration, faults)
    cli = state(ctx)
    setup = open_demo(cli.settings(), actor=cli.actor)
    platform = setup.platform
    device_logs = logging.getLogger("devicetrust.device")
    level = device_logs.level
    device_logs.setLevel(logging.ERROR)  # refusals and reconnections are counted instead
    try:
        summary = _run(platform, cli.actor, plan, site, lines, devices,
                       Rates(rate_diagnostics, rate_telemetry), duration, seed, quiet=as_json)
    finally:
        device_logs.setLevel(level)
        platform.close()
    if as_json:
        output.emit_json(summary.to_json())
    else:
        _show(summary)


def _plan(devices: int, site: str, lines: int, rate_diagnostics: float, rate_telemetry: float,
          duration: float, faults: str) -> FaultPlan:
    if not 1 <= devices <= MAX_DEVICES:
        raise InvalidInput("cli.bad_devices", f"--devices is 1 to {MAX_DEVICES}")
    if not 1 <= lines <= MAX_LINES:
        raise InvalidInput("cli.bad_lines", f"--lines is 1 to {MAX_LINES}")
    if not site or not all(c.isalnum() or c == "-" for c in site) or not site[0].isalnum():
        raise InvalidInput("cli.bad_site", "--site is letters, digits and '-' (plant-1)")
    if rate_diagnostics < 0 or rate_telemetry < 0:
        raise InvalidInput("cli.bad_rate", "rates are messages per second, 0 or more")
    if not duration > 0:
        raise InvalidInput("cli.bad_duration", "--duration is a positive number of seconds")
    try:
        chosen = parse_faults(faults)
    except ValueError as exc:
        raise InvalidInput("cli.bad_faults", str(exc)) from None
    return FaultPlan(chosen, disconnect_every=max(0.5, min(5.0, duration / 10)))


def _run(platform: Platform, actor: str, plan: FaultPlan, site: str, lines: int, devices: int,
         rates: Rates, duration: float, seed: int | None, *, quiet: bool) -> FleetSummary:
    with EmbeddedServer(platform) as server, \
            tempfile.TemporaryDirectory(prefix="devicetrust-simulate-") as folder:
        ca_file = Path(folder) / "platform-ca.pem"
        ca_file.write_text(server.ca_pem)
        job = FleetJob(server.url, str(ca_file), _factory(platform, actor, site, lines, devices),
                       str(Path(folder) / "devices"), duration, rates=rates, faults=plan,
                       seed=seed)
        with _display(quiet, devices) as display:
            try:
                return run_sharded(job, on_progress=display.progress, on_summary=display.summary,
                                   at_half=lambda names: _slow_down(platform, actor, names))
            except ShardFailed as exc:
                raise DeviceTrustError("simulate.shard_failed", str(exc)) from exc


SIMULATED_KEYS = "simulated arms keep their keys in memory keystores, not in a TPM"


def _factory(platform: Platform, actor: str, site: str, lines: int,
             devices: int) -> list[FleetUnit]:
    """Register the units (one batch) and enroll each line as a symmetric-key group; hand
    each unit the key the factory would flash. The group keys are wiped here."""
    run = secrets.token_hex(3)  # group names are unique per run; pools skip names held
    specs = [UnitSpec(model=MODEL, hardware_serials={"arm": f"SIM-{run}-{i:05d}"})
             for i in range(devices)]
    registered = platform.identity.register_batch(specs, actor=actor)
    per_line = -(-devices // lines)
    width = max(3, len(str(per_line)))
    enrollments = platform.provisioning.enrollments
    units: list[FleetUnit] = []
    for line in range(lines):
        members = registered[line::lines]
        if not members:
            continue
        pool = f"{site}-line-{line + 1:02d}-arm-{{{1:0{width}d}..{10 ** width - 1}}}"
        shown = enrollments.create_symmetric_group(
            f"{site}-line-{line + 1:02d}-sim-{run}",
            Allocation(AllocationPolicy.POOL, pool_pattern=pool), actor=actor)
        try:
            allow_software_keys(platform, shown.enrollment.name, reason=SIMULATED_KEYS,
                                actor=actor)
            units.extend(
                FleetUnit(m.physical_id, bytearray(
                    hmac.digest(bytes(shown.key), m.physical_id.encode(), hashlib.sha256)))
                for m in members)
        finally:
            shown.key[:] = bytes(len(shown.key))
    return units


def _slow_down(platform: Platform, actor: str, names: list[str]) -> None:
    """Feedback from the control room, half-way: the first arm of each line slows down."""
    queue = FeedbackQueue(platform.db, platform.clock)
    firsts: dict[str, str] = {}
    for name in sorted(names):
        firsts.setdefault(name.rsplit("-arm-", 1)[0], name)
    for name in firsts.values():
        queue.send(name, SLOW_DOWN, actor=actor)


class _Quiet:
    """No progress bar and no live line (--json: stdout holds the JSON document only)."""

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def progress(self, phase: str, done: int, total: int) -> None:
        return None

    def summary(self, summary: FleetSummary) -> None:
        return None


class _Display(_Quiet):
    """Progress bars (provisioning, connecting) on stderr, then the one-line live summary
    rewritten in place (rich allows one live display at a time: the bars stop first)."""

    def __init__(self, devices: int) -> None:
        self._bars = Progress(TextColumn("{task.description:<12}"), BarColumn(),
                              MofNCompleteColumn(), TimeElapsedColumn(), console=output.err)
        self._tasks = {phase: self._bars.add_task(phase, total=devices)
                       for phase in ("provisioning", "connecting")}
        self._line: Live | None = None

    def __enter__(self) -> _Display:
        self._bars.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._bars.stop()
        if self._line is not None:
            self._line.stop()
            output.err.line()

    def progress(self, phase: str, done: int, total: int) -> None:
        self._bars.update(self._tasks[phase], completed=done)

    def summary(self, summary: FleetSummary) -> None:
        if self._line is None:
            self._bars.stop()
            self._line = Live(console=output.err, refresh_per_second=4)
            self._line.start()
        self._line.update(Text(summary.line()))


def _display(quiet: bool, devices: int) -> _Quiet:
    return _Quiet() if quiet else _Display(devices)


def _show(summary: FleetSummary) -> None:
    rows = [
        ("devices", f"{summary.provisioned} provisioned of {summary.devices} in "
                    f"{summary.provisioning_s:.1f} s ({summary.provisioned_per_second:.1f}/s), "
                    f"connected in {summary.connecting_s:.1f} s"),
        ("messages", f"{summary.published} sent, {summary.acked} acknowledged, "
                     f"{summary.pending} pending, {summary.rejected} refused"),
        ("throughput", f"{summary.acked_per_second:.0f} acknowledged msg/s over "
                       f"{summary.elapsed_s:.1f} s"),
        ("ack latency", "-" if summary.ack_latency_p50_ms is None else
         f"p50 {summary.ack_latency_p50_ms:.0f} ms, p99 {summary.ack_latency_p99_ms:.0f} ms "
         f"(±{summary.resolution_ms:.0f} ms)"),
        ("feedback", f"{summary.feedback_received} received, {summary.feedback_applied} applied"),
        ("reconnects", str(summary.reconnects)),
        ("faults", _counts(summary.faults_injected) + _unexpected(summary)),
        ("refusals", _counts(summary.refusals)),
    ]
    output.fields("devicetrust simulate", rows, style="cyan")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or "none"


def _unexpected(summary: FleetSummary) -> str:
    if not summary.faults_unexpected:
        return " (each as expected)"
    return f" (NOT as expected: {_counts(summary.faults_unexpected)})"

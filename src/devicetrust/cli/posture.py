"""`devicetrust posture`: which security measures hold, per device or for the fleet, mapped to
ETSI EN 303 645 and NISTIR 8259A, with every relaxation in force or recently ended.

Computed by the policy service from live state at each call; this module only prints.
"""

from __future__ import annotations

from typing import Annotated

import typer

from devicetrust.cli import output
from devicetrust.cli.context import state
from devicetrust.cli.policy import show_relaxations
from devicetrust.policy import DevicePosture, FleetPosture
from devicetrust.policy.posture import Rollup, Status

_MARK = {
    Status.PASS: "pass",
    Status.FAIL: "FAIL",
    Status.RELAXED: "relaxed",
    Status.UNKNOWN: "unknown",
    Status.NOT_APPLICABLE: "n/a",
}


def _standards(title: str, rollups: tuple[Rollup, ...]) -> None:
    output.table(
        title,
        ["ref", "title", "status", "why"],
        [(r.ref, r.title, _MARK[r.status], r.reason) for r in rollups],
    )


def show_device(posture: DevicePosture) -> None:
    f = posture.facts
    output.fields(
        f"Posture of {f.physical_id}: {_MARK[posture.status]}",
        [
            ("logical name", f.logical_name),
            ("state", f.state.value),
            ("enrollment", f.enrollment),
            ("attestation", f.attestation.value if f.attestation else None),
            (
                "certificates",
                [f"{c.serial[:16]}... until {output.when(c.not_after)}" for c in f.certificates],
            ),
        ],
    )
    output.table(
        "Measures",
        ["measure", "status", "why", "relaxations"],
        [(r.measure.value, _MARK[r.status], r.reason, r.relaxations) for r in posture.measures],
    )
    _standards("ETSI EN 303 645", posture.etsi)
    _standards("NISTIR 8259A", posture.nist)
    if f.effective.relaxations:
        show_relaxations(list(f.effective.relaxations), f.effective.evaluated_at, "Relaxations")


def show_fleet(posture: FleetPosture) -> None:
    output.note(f"Fleet posture: {_MARK[posture.status]} ({posture.units} unit(s))")
    output.table(
        "Measures (devices)",
        ["measure", "status", *(_MARK[s] for s in Status)],
        [
            (m.measure.value, _MARK[m.status], *(m.counts.get(s, 0) for s in Status))
            for m in posture.measures
        ],
    )
    output.table(
        "Platform",
        ["check", "measure", "status", "why"],
        [(r.check, r.measure.value, _MARK[r.status], r.reason) for r in posture.platform],
    )
    _standards("ETSI EN 303 645", posture.etsi)
    _standards("NISTIR 8259A", posture.nist)
    show_relaxations(
        list(posture.relaxations), posture.evaluated_at, "Relaxations (active and recent)"
    )
    output.table(
        "Devices",
        ["physical id", "logical name", "state", "status"],
        [
            (d.facts.physical_id, d.facts.logical_name, d.facts.state.value, _MARK[d.status])
            for d in posture.devices
        ],
    )
    if posture.truncated:
        output.warn(f"Only the first {len(posture.devices)} devices are listed.")


def posture(
    ctx: typer.Context,
    device: Annotated[
        str | None, typer.Option("--device", help="One unit (physical id); default: the fleet.")
    ] = None,
    as_json: output.JsonFlag = False,
) -> None:
    """Which security measures hold (unique identity, key in hardware, short-lived
    credentials, encrypted storage, signed firmware, attestation), from live state."""
    reports = state(ctx).platform().policy.posture
    if device is not None:
        found = reports.device(device)
        if as_json:
            output.emit_json(found.to_json())
        else:
            show_device(found)
        return
    fleet = reports.fleet()
    if as_json:
        output.emit_json(fleet.to_json())
    else:
        show_fleet(fleet)

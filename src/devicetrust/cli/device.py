"""`devicetrust device`: physical units, their lifecycle state and what they held."""

from __future__ import annotations

from typing import Annotated

import typer

from devicetrust.cli import output
from devicetrust.cli.context import state
from devicetrust.cli.identity import history_table
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.domain.records import PhysicalIdentity

app = typer.Typer(
    help="Physical units: lifecycle state, quarantine release, binding history.",
    no_args_is_help=True,
    epilog=output.example("devicetrust device list --state active"),
)

UnitArg = Annotated[str, typer.Argument(help="Physical id (UUID) of the unit.")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")]


@app.command(
    "show",
    epilog=output.example("devicetrust device show c2c38155-b0d2-48b6-82fd-22fe3b316224 --json"),
)
def show(ctx: typer.Context, physical_id: UnitArg, as_json: output.JsonFlag = False) -> None:
    """Show a unit: model, serials, state and the logical identity it holds."""
    unit = state(ctx).platform().identity.get_physical(physical_id)
    if as_json:
        output.emit_json(unit.to_json())
    else:
        show_unit(unit, title=f"Unit {unit.physical_id}")


@app.command("list", epilog=output.example("devicetrust device list --state active"))
def list_(
    ctx: typer.Context,
    state_filter: Annotated[
        DeviceState | None, typer.Option("--state", help="Only units in this state.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many (paging).")] = 0,
    as_json: output.JsonFlag = False,
) -> None:
    """List units, oldest first."""
    units = (
        state(ctx).platform().identity.list_physical(state=state_filter, limit=limit, offset=offset)
    )
    if as_json:
        output.emit_json({"units": [u.to_json() for u in units]})
        return
    output.table(
        None,
        ["physical id", "model", "state", "logical identity", "manufactured"],
        [(u.physical_id, u.model, u.state.value, u.logical_name, u.manufactured_at) for u in units],
    )


@app.command(
    "state",
    epilog=output.example(
        "UNIT=c2c38155-b0d2-48b6-82fd-22fe3b316224",
        'devicetrust device state "$UNIT" suspended --reason maintenance',
    ),
)
def set_state(
    ctx: typer.Context,
    physical_id: UnitArg,
    target: Annotated[DeviceState, typer.Argument(metavar="STATE", help="The new state.")],
    reason: ReasonOpt = "",
    as_json: output.JsonFlag = False,
) -> None:
    """Move a unit along its lifecycle (invalid transitions are refused)."""
    cli = state(ctx)
    unit = cli.platform().identity.set_state(physical_id, target, actor=cli.actor, reason=reason)
    _changed(unit, as_json)


@app.command(
    "release",
    epilog=output.example("devicetrust device release c2c38155-b0d2-48b6-82fd-22fe3b316224"),
)
def release(
    ctx: typer.Context,
    physical_id: UnitArg,
    reason: ReasonOpt = "",
    as_json: output.JsonFlag = False,
) -> None:
    """Release a unit from quarantine (to suspended, or manufactured if never provisioned)."""
    cli = state(ctx)
    service = cli.platform().identity
    # The lifecycle rules choose the target; QUARANTINED here is only a placeholder.
    unit = service.set_state(
        physical_id, DeviceState.QUARANTINED, actor=cli.actor, reason=reason, release=True
    )
    _changed(unit, as_json)


@app.command(
    "history",
    epilog=output.example("devicetrust device history c2c38155-b0d2-48b6-82fd-22fe3b316224 --json"),
)
def history(ctx: typer.Context, physical_id: UnitArg, as_json: output.JsonFlag = False) -> None:
    """Which logical identities a unit held, and when (oldest first)."""
    bindings = state(ctx).platform().identity.history_of_physical(physical_id)
    if as_json:
        output.emit_json({"bindings": [b.to_json() for b in bindings]})
        return
    history_table(bindings, title=f"Logical identities held by {physical_id}", by_name=True)


def show_unit(unit: PhysicalIdentity, *, title: str) -> None:
    output.fields(
        title,
        [
            ("physical id", unit.physical_id),
            ("model", unit.model),
            ("serials", unit.hardware_serials),
            ("state", unit.state.value),
            ("manufactured", unit.manufactured_at),
            ("logical identity", unit.logical_name),
            ("key fingerprints", unit.key_fingerprints),
        ],
    )


def _changed(unit: PhysicalIdentity, as_json: bool) -> None:
    if as_json:
        output.emit_json(unit.to_json())
    else:
        output.success(f"{unit.physical_id} is now {unit.state.value}")

"""`devicetrust factory`: manufacturing-time commands (physical identities)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from devicetrust.cli import output
from devicetrust.cli.context import state
from devicetrust.cli.device import show_unit
from devicetrust.domain.errors import InvalidInput
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import UnitSpec

app = typer.Typer(
    help="Manufacturing: give units their immutable physical identity.",
    no_args_is_help=True,
    epilog=output.example("devicetrust factory register --model RA-7 --serial arm=ARM-9913"),
)

MAX_COUNT = 100_000
_CHUNK = 500  # units per transaction in a batch: bounded memory, visible progress
INDEX_PLACEHOLDER = "{n}"


def parse_serials(pairs: list[str]) -> dict[str, str]:
    """`component=serial` pairs from the command line."""
    serials: dict[str, str] = {}
    for pair in pairs:
        component, sep, serial = pair.partition("=")
        if not sep or not component.strip() or not serial.strip():
            raise InvalidInput(
                "cli.invalid_serial",
                f"--serial takes component=serial, got {pair[:64]!r}",
            )
        if component.strip() in serials:
            raise InvalidInput(
                "cli.invalid_serial", f"component {component.strip()[:64]!r} given twice"
            )
        serials[component.strip()] = serial.strip()
    return serials


def _specs(model: str, serials: dict[str, str], count: int) -> list[UnitSpec]:
    if count == 1:
        return [UnitSpec(model=model, hardware_serials=serials)]
    for component, serial in serials.items():
        if INDEX_PLACEHOLDER not in serial:
            raise InvalidInput(
                "cli.invalid_serial",
                f"with --count > 1 each serial needs {INDEX_PLACEHOLDER} (the unit's number in "
                f"the batch), or units would share serials; {component}={serial[:64]!r} has none",
            )
    width = len(str(count))
    return [
        UnitSpec(
            model=model,
            hardware_serials={
                component: serial.replace(INDEX_PLACEHOLDER, f"{n:0{width}d}")
                for component, serial in serials.items()
            },
        )
        for n in range(1, count + 1)
    ]


@app.command(
    "register",
    epilog=output.example(
        "devicetrust factory register --model RA-7 --serial controller=CTL-0042",
        "devicetrust factory register --model RA-7 --count 500 --serial arm=ARM-{n}",
    ),
)
def register(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Hardware model of the unit.")
    ] = "unspecified",
    serial: Annotated[
        list[str] | None,
        typer.Option(
            "--serial",
            "-s",
            help="Component serial as component=serial (repeat). With --count, {n} is the "
            "unit's number in the batch.",
        ),
    ] = None,
    count: Annotated[
        int,
        typer.Option("--count", "-n", min=1, max=MAX_COUNT, help="Register a batch of N units."),
    ] = 1,
    as_json: output.JsonFlag = False,
) -> None:
    """Register manufactured units: each gets a fresh CSPRNG UUIDv4 as physical identity."""
    specs = _specs(model, parse_serials(serial or []), count)
    cli = state(ctx)
    identity = cli.platform().identity
    if count == 1:
        unit = identity.register(specs[0], actor=cli.actor)
        if as_json:
            output.emit_json(unit.to_json())
        else:
            show_unit(unit, title="Unit registered")
        return
    units: list[PhysicalIdentity] = []
    with Progress(
        TextColumn("registering"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=output.err,
        disable=not output.err.is_terminal,
        transient=True,
    ) as progress:
        task = progress.add_task("register", total=count)
        for start in range(0, count, _CHUNK):
            chunk = specs[start : start + _CHUNK]
            units.extend(identity.register_batch(chunk, actor=cli.actor))
            progress.advance(task, len(chunk))
    if as_json:
        output.emit_json([unit.to_json() for unit in units])
        return
    output.table(
        f"{len(units)} units registered ({model})",
        ["physical id", "serials", "manufactured"],
        [(u.physical_id, u.hardware_serials, u.manufactured_at) for u in units],
    )

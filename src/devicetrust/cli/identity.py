"""`devicetrust identity`: logical identities, their bindings to units, and their history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from devicetrust.cli import output
from devicetrust.cli.context import state
from devicetrust.domain.errors import InvalidInput
from devicetrust.domain.lifecycle import ReplacementFate
from devicetrust.domain.records import Binding, LogicalIdentity, PhysicalIdentity

app = typer.Typer(
    help="Logical identities: business names bound to physical units.",
    no_args_is_help=True,
    epilog=output.example("devicetrust identity history line-03-left-welding-12"),
)

NameArg = Annotated[str, typer.Argument(help="Logical name, e.g. line-03-left-welding-12.")]
UnitArg = Annotated[str, typer.Argument(help="Physical id (UUID) of a unit.")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why (kept in the history).")]
SiteOpt = Annotated[str | None, typer.Option(help="Site attribute.")]
LineOpt = Annotated[str | None, typer.Option(help="Production line attribute.")]
RoleOpt = Annotated[str | None, typer.Option(help="Role attribute.")]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeat).")]
DescriptionOpt = Annotated[str | None, typer.Option(help="Free-text description.")]


@app.command(
    "create",
    epilog=output.example(
        "devicetrust identity create line-03-left-welding-12 --site plant-a --line 03"
    ),
)
def create(
    ctx: typer.Context,
    name: NameArg,
    site: SiteOpt = None,
    line: LineOpt = None,
    role: RoleOpt = None,
    tag: TagOpt = None,
    description: DescriptionOpt = None,
    as_json: output.JsonFlag = False,
) -> None:
    """Create a logical identity (lowercase letters, digits, dashes, dots)."""
    attributes = _attributes(site=site, line=line, role=role, tags=tag, description=description)
    cli = state(ctx)
    logical = cli.platform().identity.create_logical(name, attributes, actor=cli.actor)
    if as_json:
        output.emit_json(logical.to_json())
    else:
        show_logical(logical, None, title="Logical identity created")


@app.command(
    "update",
    epilog=output.example("devicetrust identity update line-03-left-welding-12 --role brazing"),
)
def update(
    ctx: typer.Context,
    name: NameArg,
    site: SiteOpt = None,
    line: LineOpt = None,
    role: RoleOpt = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="A tag (repeat); replaces all tags.")
    ] = None,
    description: DescriptionOpt = None,
    unset: Annotated[
        list[str] | None, typer.Option("--unset", help="Remove this attribute (repeat).")
    ] = None,
    as_json: output.JsonFlag = False,
) -> None:
    """Change the attributes of a logical identity (only those given)."""
    changes: dict[str, Any] = dict.fromkeys(unset or [])
    changes.update(_attributes(site=site, line=line, role=role, tags=tag, description=description))
    if not changes:
        raise InvalidInput("cli.nothing_to_update", "give at least one attribute or --unset")
    cli = state(ctx)
    logical = cli.platform().identity.update_attributes(name, changes, actor=cli.actor)
    if as_json:
        output.emit_json(logical.to_json())
    else:
        show_logical(logical, None, title=f"Logical identity {logical.name} updated")


def _attributes(*, tags: list[str] | None, **values: str | None) -> dict[str, Any]:
    """The attributes given on the command line (absent options are not changes)."""
    attributes: dict[str, Any] = {k: v for k, v in values.items() if v is not None}
    if tags:
        attributes["tags"] = tags
    return attributes


@app.command("list", epilog=output.example("devicetrust identity list --json"))
def list_(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many (paging).")] = 0,
    as_json: output.JsonFlag = False,
) -> None:
    """List logical identities by name, with their current holder."""
    identities = state(ctx).platform().identity.list_logical(limit=limit, offset=offset)
    if as_json:
        output.emit_json({"identities": [i.to_json() for i in identities]})
        return
    output.table(
        None,
        ["name", "holder", "site", "line", "role", "tags"],
        [
            (
                i.name,
                i.physical_id,
                i.attributes.get("site"),
                i.attributes.get("line"),
                i.attributes.get("role"),
                i.attributes.get("tags"),
            )
            for i in identities
        ],
    )


@app.command("show", epilog=output.example("devicetrust identity show line-03-left-welding-12"))
def show(ctx: typer.Context, name: NameArg, as_json: output.JsonFlag = False) -> None:
    """Show a logical identity, its attributes and the unit holding it."""
    service = state(ctx).platform().identity
    logical = service.get_logical(name)
    holder = service.get_physical(logical.physical_id) if logical.physical_id else None
    if as_json:
        output.emit_json({**logical.to_json(), "holder": holder.to_json() if holder else None})
    else:
        show_logical(logical, holder, title=f"Logical identity {logical.name}")


@app.command(
    "bind",
    epilog=output.example(
        "UNIT=c2c38155-b0d2-48b6-82fd-22fe3b316224",
        'devicetrust identity bind line-03-left-welding-12 "$UNIT"',
    ),
)
def bind(
    ctx: typer.Context,
    name: NameArg,
    physical_id: UnitArg,
    reason: ReasonOpt = None,
    as_json: output.JsonFlag = False,
) -> None:
    """Bind a free unit to a free logical identity (a manufactured unit becomes provisioned)."""
    cli = state(ctx)
    binding = cli.platform().identity.bind(
        name, physical_id, actor=cli.actor, reason=reason or "provisioned"
    )
    _done(
        binding.to_json(), f"{binding.logical_name} is now held by {binding.physical_id}", as_json
    )


@app.command("unbind", epilog=output.example("devicetrust identity unbind line-03-left-welding-12"))
def unbind(
    ctx: typer.Context, name: NameArg, reason: ReasonOpt = None, as_json: output.JsonFlag = False
) -> None:
    """End the current binding of a logical identity; the unit stays live, unbound."""
    cli = state(ctx)
    binding = cli.platform().identity.unbind(name, actor=cli.actor, reason=reason or "unbound")
    _done(binding.to_json(), f"{binding.logical_name} released by {binding.physical_id}", as_json)


@app.command(
    "rename",
    epilog=output.example(
        "devicetrust identity rename line-03-left-welding-12 line-04-left-welding-01"
    ),
)
def rename(
    ctx: typer.Context,
    name: NameArg,
    new_name: Annotated[str, typer.Argument(help="The new logical name.")],
    as_json: output.JsonFlag = False,
) -> None:
    """Rename a logical identity; the old name keeps resolving for the grace period."""
    cli = state(ctx)
    logical = cli.platform().identity.rename(name, new_name, actor=cli.actor)
    _done(logical.to_json(), f"{name} renamed to {logical.name}", as_json)


@app.command(
    "transfer",
    epilog=output.example(
        "SPARE=0b8f3c7e-9d1a-4c2b-8e5f-6a7b8c9d0e1f",
        'devicetrust identity transfer line-03-left-welding-12 "$SPARE"',
    ),
)
def transfer(
    ctx: typer.Context, name: NameArg, physical_id: UnitArg, as_json: output.JsonFlag = False
) -> None:
    """Move a logical identity to another live unit; the former holder stays live, unbound."""
    cli = state(ctx)
    binding = cli.platform().identity.transfer(name, physical_id, actor=cli.actor)
    _done(
        binding.to_json(), f"{binding.logical_name} transferred to {binding.physical_id}", as_json
    )


@app.command(
    "replace",
    epilog=output.example(
        "NEW=0b8f3c7e-9d1a-4c2b-8e5f-6a7b8c9d0e1f",
        'devicetrust identity replace line-03-left-welding-12 "$NEW" --reason broken',
    ),
)
def replace(
    ctx: typer.Context,
    name: NameArg,
    new_physical_id: Annotated[str, typer.Argument(help="Physical id of the replacement unit.")],
    old: Annotated[
        str | None,
        typer.Option(
            "--old", help="The unit you mean to replace; refused if it is no longer the holder."
        ),
    ] = None,
    fate: Annotated[
        ReplacementFate, typer.Option(help="What becomes of the old unit.")
    ] = ReplacementFate.DECOMMISSIONED,
    reason: ReasonOpt = None,
    as_json: output.JsonFlag = False,
) -> None:
    """Replace the unit holding a logical identity, atomically (emits device.replaced)."""
    cli = state(ctx)
    done = cli.platform().identity.replace(
        name,
        new_physical_id,
        actor=cli.actor,
        old_physical_id=old,
        fate=fate,
        reason=reason or "replaced",
    )
    _done(
        done.to_json(),
        f"{done.logical_name}: {done.old_physical_id} ({done.old_unit_state.value}) replaced by "
        f"{done.new_physical_id}",
        as_json,
    )


@app.command(
    "history",
    epilog=output.example(
        "devicetrust identity history line-03-left-welding-12 --json",
        "devicetrust identity history line-03-left-welding-12 --at 2026-11-25T08:00Z",
    ),
)
def history(
    ctx: typer.Context,
    name: NameArg,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="Only the binding covering this ISO 8601 time (no offset means UTC)."
        ),
    ] = None,
    as_json: output.JsonFlag = False,
) -> None:
    """Which units held a logical identity, and when (oldest first)."""
    service = state(ctx).platform().identity
    if at is None:
        bindings = service.history_of_logical(name)
    else:
        moment = parse_when(at)
        holder = service.holder_at(name, moment)
        bindings = [holder] if holder else []
    if as_json:
        document: dict[str, Any] = {"bindings": [b.to_json() for b in bindings]}
        if at is not None:
            document["at"] = parse_when(at).isoformat()
        output.emit_json(document)
        return
    if at is not None and not bindings:
        output.note(f"no unit held {name} at {at}")
        return
    history_table(bindings, title=f"History of {name}")


def history_table(bindings: list[Binding], *, title: str, by_name: bool = False) -> None:
    """Bindings as a table: the unit of each (or the logical name, `by_name`), the interval,
    and why it began and ended."""
    output.table(
        title,
        ["logical identity" if by_name else "unit", "from", "to", "began", "ended", "by"],
        [
            (
                b.name_at_start if by_name else b.physical_id,
                b.started_at,
                b.ended_at,
                b.start_reason,
                b.end_reason,
                b.ended_by or b.started_by,
            )
            for b in bindings
        ],
    )


def show_logical(logical: LogicalIdentity, holder: PhysicalIdentity | None, *, title: str) -> None:
    items: list[tuple[str, Any]] = [
        ("name", logical.name),
        ("logical id", logical.logical_id),
        *((key, value) for key, value in sorted(logical.attributes.items())),
        ("holder", logical.physical_id),
    ]
    if holder is not None:
        items.append(("holder state", holder.state.value))
    if logical.former_names:
        items.append(("former names", logical.former_names))
    items.append(("created", logical.created_at))
    output.fields(title, items)


def parse_when(value: str) -> datetime:
    """An ISO 8601 time from the command line; without an offset it is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(
            "cli.invalid_time",
            f"not an ISO 8601 time: {value[:64]!r} (e.g. 2026-11-25T08:00:00Z)",
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _done(document: dict[str, Any], message: str, as_json: bool) -> None:
    if as_json:
        output.emit_json(document)
    else:
        output.success(message)

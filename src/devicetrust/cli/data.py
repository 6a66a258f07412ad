"""`devicetrust data`: what the fleet reported -- diagnostics by logical identity (one history
across replacements), telemetry by unit -- newest first, over a time window.

Read-only; the message store answers, this module only parses and prints. Payloads are
printed with markup off (a device's data can never style the terminal).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from devicetrust.cli import output
from devicetrust.cli.context import state
from devicetrust.ingest.records import StoredMessage
from devicetrust.ingest.store import MAX_QUERY, MessageStore
from devicetrust.ingest.window import window

NAME = "line-03-left-welding-12"
SET_ID = "ID=c2c38155-b0d2-48b6-82fd-22fe3b316224"

app = typer.Typer(
    help="Diagnostics and telemetry the devices reported.",
    no_args_is_help=True,
    epilog=output.example(
        f"devicetrust data diagnostics {NAME} --since 1h",
        SET_ID,
        'devicetrust data telemetry "$ID" --since 30m --json',
    ),
)

_BOUND = "An ISO 8601 time with a timezone (2026-11-25T08:00Z) or a duration back from now (1h)."
SinceOpt = Annotated[str | None, typer.Option("--since", help=f"From (inclusive). {_BOUND}")]
UntilOpt = Annotated[str | None, typer.Option("--until", help=f"To (exclusive). {_BOUND}")]
LimitOpt = Annotated[
    int, typer.Option("--limit", help=f"At most this many (1-{MAX_QUERY}), newest first.")
]


def _show(title: str, messages: list[StoredMessage], as_json: bool) -> None:
    if as_json:
        output.emit_json({"items": [m.to_json() for m in messages]})
        return
    output.table(
        title,
        ["received", "unit", "logical name", "key", "payload"],
        [
            (
                m.received_at,
                m.physical_id,
                m.logical_name,
                m.message_key[:16],
                json.dumps(m.payload, ensure_ascii=False, sort_keys=True),
            )
            for m in messages
        ],
    )
    if not messages:
        output.note("no messages in this window")


@app.command(
    "diagnostics",
    epilog=output.example(
        f"devicetrust data diagnostics {NAME} --since 1h",
        f"devicetrust data diagnostics {NAME} \\",
        "  --since 2026-11-25T08:00Z --until 2026-11-25T09:00Z --json",
    ),
)
def diagnostics(
    ctx: typer.Context,
    logical_name: Annotated[
        str, typer.Argument(help="The logical identity (current name, or a former one).")
    ],
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: LimitOpt = 100,
    as_json: output.JsonFlag = False,
) -> None:
    """Diagnostics of a logical identity, from every unit that held it, newest first."""
    platform = state(ctx).platform()
    start, end = window(since, until, platform.clock.now())
    found = MessageStore(platform.db, platform.clock).diagnostics_of(
        logical_name, since=start, until=end, limit=limit
    )
    _show(f"Diagnostics of {logical_name}", found, as_json)


@app.command(
    "telemetry",
    epilog=output.example(SET_ID, 'devicetrust data telemetry "$ID" --since 30m --limit 20'),
)
def telemetry(
    ctx: typer.Context,
    physical_id: Annotated[str, typer.Argument(help="The unit's physical id (UUIDv4).")],
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: LimitOpt = 100,
    as_json: output.JsonFlag = False,
) -> None:
    """Telemetry of one unit (never another unit's), newest first."""
    platform = state(ctx).platform()
    start, end = window(since, until, platform.clock.now())
    unit = platform.identity.get_physical(physical_id)
    found = MessageStore(platform.db, platform.clock).telemetry_of(
        unit.physical_id, since=start, until=end, limit=limit
    )
    _show(f"Telemetry of {unit.physical_id}", found, as_json)

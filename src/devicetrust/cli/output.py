"""How the CLI speaks: machine output (JSON) on stdout, messages on stderr, rich tables for people.

Never prints a secret except where a command exists to hand one over once (`init`,
`apikey create`, `webhook add`), and then only on stdout, never in a log.
Data from the database is printed with markup off: a name or reason can never inject rich
markup or terminal styling.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON on stdout (messages on stderr).")
]

# Wide enough that UUIDs and timestamps do not wrap when output goes to a file or pipe.
_PIPE_WIDTH = 160


def _console(*, stderr: bool) -> Console:
    console = Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = _PIPE_WIDTH
    return console


out = _console(stderr=False)
err = _console(stderr=True)


def example(*commands: str) -> str:
    """A `--help` epilog: each command on a line of its own, never re-wrapped by the help
    formatter as long as it fits in 78 columns, so it can be copied and pasted."""
    return "\n\n".join(("Example:", *commands))


def emit_json(value: Any) -> None:
    """Write one JSON document to stdout (nothing else goes to stdout in --json mode)."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=_json_default))
    sys.stdout.write("\n")
    sys.stdout.flush()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def error(message: str, code: str) -> None:
    """The one format of a failure: `error: <message> [<code>]` on stderr, plain text."""
    sys.stdout.flush()
    sys.stderr.write(f"error: {message} [{code}]\n")
    sys.stderr.flush()


def note(message: str) -> None:
    """A human message on stderr (never mixed into machine output)."""
    err.print(Text(message))


def success(message: str) -> None:
    err.print(Text(message, style="green"))


def warn(message: str) -> None:
    err.print(Text(message, style="yellow"))


def when(value: datetime | None) -> str:
    """A timestamp for people: UTC, to the millisecond; '-' for an open interval."""
    if value is None:
        return "-"
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    console: Console | None = None,
) -> None:
    grid = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*(Text(_cell(cell)) for cell in row))
    (console or out).print(grid)


def fields(
    title: str, items: Iterable[tuple[str, Any]], *, console: Console | None = None, style: str = ""
) -> None:
    """A panel of `label: value` lines (one record shown to a person)."""
    body = Table.grid(padding=(0, 2))
    body.add_column(style="bold")
    body.add_column(overflow="fold")
    for label, value in items:
        body.add_row(Text(label), Text(_cell(value)))
    panel = Panel(body, title=Text(title), title_align="left", border_style=style, expand=False)
    (console or out).print(panel)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)

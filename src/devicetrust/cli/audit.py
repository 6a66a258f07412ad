"""`devicetrust audit`: read the audit log and verify its hash chain.

`verify` exits 0 only when every entry checks out; otherwise it names the first broken entry
and exits with `EXIT_CHAIN_BROKEN`, so scripts and monitoring can alert on it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from devicetrust.cli import output
from devicetrust.cli.context import state
from devicetrust.events import AuditLog

app = typer.Typer(
    help="The audit log: append-only, SHA-256 hash-chained.",
    no_args_is_help=True,
    epilog=output.example("devicetrust audit verify"),
)

EXIT_CHAIN_BROKEN = 7


def head_hash(audit: AuditLog, head_seq: int) -> str | None:
    """The hash of the head entry (what to anchor outside the database)."""
    if head_seq < 1:
        return None
    last = audit.entries(after_seq=head_seq - 1, limit=1)
    return last[0].hash if last and last[0].seq == head_seq else None


@app.command("verify", epilog=output.example("devicetrust audit verify && echo intact"))
def verify(ctx: typer.Context, as_json: output.JsonFlag = False) -> None:
    """Check the whole hash chain; exit 0 if intact, 7 naming the first broken entry if not."""
    audit = state(ctx).platform().audit
    result = audit.verify()
    broken = result.first_break
    report: dict[str, Any] = {
        "ok": result.ok,
        "count": result.count,
        "head_seq": result.head_seq,
        "head_hash": head_hash(audit, result.head_seq) if result.ok else None,
        "first_break": {"seq": broken.seq, "reason": broken.reason} if broken else None,
    }
    if as_json:
        output.emit_json(report)
    elif result.ok:
        output.fields(
            "audit log intact",
            [
                ("entries", result.count),
                ("head seq", result.head_seq),
                ("head hash", report["head_hash"]),
            ],
            style="green",
        )
    if broken is not None:
        output.error(
            f"audit log broken at entry {broken.seq}: {broken.reason} "
            f"({result.count} entries verified before it)",
            "audit.chain_broken",
        )
        raise typer.Exit(EXIT_CHAIN_BROKEN)


@app.command(
    "list", epilog=output.example("devicetrust audit list --subject line-03-left-welding-12 --json")
)
def list_(
    ctx: typer.Context,
    after: Annotated[int, typer.Option(min=0, help="Only entries after this seq (paging).")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
    subject: Annotated[
        str | None, typer.Option(help="Only entries about this subject (name or id).")
    ] = None,
    as_json: output.JsonFlag = False,
) -> None:
    """List audit entries, oldest first."""
    entries = state(ctx).platform().audit.entries(after_seq=after, limit=limit, subject=subject)
    if as_json:
        output.emit_json(
            {
                "entries": [
                    {
                        "seq": e.seq,
                        "occurred_at": e.occurred_at.isoformat(),
                        "actor": e.actor,
                        "action": e.action,
                        "subject": e.subject,
                        "details": dict(e.details),
                        "prev_hash": e.prev_hash,
                        "hash": e.hash,
                    }
                    for e in entries
                ]
            }
        )
        return
    output.table(
        None,
        ["seq", "time", "actor", "action", "subject", "hash"],
        [(e.seq, e.occurred_at, e.actor, e.action, e.subject, e.hash[:16]) for e in entries],
    )

"""`devicetrust policy`: the security policy per fleet, enrollment and device, and conscious
relaxations of it.

`set` only tightens (or tunes within the secure baseline); anything weaker goes through
`relax`, which needs a reason and an expiry and is audited. Every change goes through the
policy service; this module only parses and prints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from devicetrust.cli import output
from devicetrust.cli.context import state
from devicetrust.domain.errors import InvalidInput
from devicetrust.policy import (
    POLICY_FIELD_HELP,
    EffectivePolicy,
    PolicyField,
    Relaxation,
    ScopePolicy,
    describe,
)

app = typer.Typer(
    help="Security policy: show, tighten, and consciously relax (with reason and expiry).",
    no_args_is_help=True,
    epilog=output.example(
        "devicetrust policy show --device c2c38155-b0d2-48b6-82fd-22fe3b316224",
        "devicetrust policy set max_certificate_lifetime=12h",
    ),
)

ScopeOpt = Annotated[
    str,
    typer.Option(
        "--scope", help="fleet, enrollment:<name> or device:<physical-id> (default: fleet)."
    ),
]
_FIELDS_HELP = "; ".join(f"{f.value}: {POLICY_FIELD_HELP[f]}" for f in PolicyField)


def _effective_rows(effective: EffectivePolicy) -> list[tuple[str, str, str, str]]:
    return [
        (
            f.value,
            describe(f, effective.policy.value(f)),
            effective.sources[f],
            describe(f, effective.strict.value(f)) if f in effective.relaxed_fields() else "",
        )
        for f in PolicyField
    ]


def show_effective(effective: EffectivePolicy, title: str) -> None:
    output.table(
        title, ["field", "value", "source", "without relaxation"], _effective_rows(effective)
    )
    if effective.relaxations:
        show_relaxations(list(effective.relaxations), effective.evaluated_at, "In force")


def show_relaxations(relaxations: list[Relaxation], now: datetime, title: str) -> None:
    output.table(
        title,
        ["id", "rule", "value", "scope", "status", "expires", "by", "reason"],
        [
            (
                r.relaxation_id,
                r.rule.value,
                describe(r.rule, r.value),
                r.scope.key,
                r.status(now).value,
                r.expires_at,
                r.created_by,
                r.reason,
            )
            for r in relaxations
        ],
    )


def _show_scope(shown: ScopePolicy, as_json: bool, title: str) -> None:
    if as_json:
        output.emit_json(shown.to_json())
        return
    own = ", ".join(f"{f.value}={describe(f, v)}" for f, v in shown.settings.items())
    output.note(f"{shown.scope.key} sets: {own or 'nothing (inherits)'}")
    show_effective(shown.effective, f"{title}: {shown.scope.key}")


@app.command(
    "show",
    epilog=output.example(
        "devicetrust policy show --scope enrollment:line-03",
        "devicetrust policy show --device c2c38155-b0d2-48b6-82fd-22fe3b316224",
    ),
)
def show(
    ctx: typer.Context,
    scope: ScopeOpt = "fleet",
    device: Annotated[
        str | None,
        typer.Option("--device", help="Effective policy of this unit (physical id)."),
    ] = None,
    as_json: output.JsonFlag = False,
) -> None:
    """Show what a scope sets and what it resolves to, or a device's effective policy."""
    service = state(ctx).platform().policy
    if device is None:
        _show_scope(service.show(scope), as_json, "Policy")
        return
    effective = service.effective(device)
    if as_json:
        output.emit_json(effective.to_json())
    else:
        show_effective(effective, f"Effective policy of {effective.physical_id}")


def _assignments(pairs: list[str]) -> dict[str, str]:
    changes: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidInput("cli.invalid_assignment", f"expected FIELD=VALUE, got {pair[:64]!r}")
        changes[name.strip()] = value.strip()
    return changes


@app.command(
    "set",
    short_help="Tighten policy fields at a scope: FIELD=VALUE ...",
    help="Set policy fields at a scope; each must be at least as strict as the baseline. "
    f"Fields: {_FIELDS_HELP}.",
    epilog=output.example(
        "devicetrust policy set max_certificate_lifetime=12h auth_methods=mtls",
        "devicetrust policy set --scope enrollment:line-03 \\",
        "  allowed_networks=10.3.0.0/16 connections_per_minute=4",
    ),
)
def set_fields(
    ctx: typer.Context,
    assignments: Annotated[
        list[str] | None, typer.Argument(help="FIELD=VALUE (lists comma-separated).")
    ] = None,
    scope: ScopeOpt = "fleet",
    unset: Annotated[
        list[str] | None, typer.Option("--unset", help="Inherit this field again (repeat).")
    ] = None,
    as_json: output.JsonFlag = False,
) -> None:
    cli = state(ctx)
    changed = cli.platform().policy.set(
        scope, _assignments(assignments or []), unset=unset or [], actor=cli.actor
    )
    _show_scope(changed, as_json, "Policy updated")


@app.command(
    "relax",
    epilog=output.example(
        "devicetrust policy relax --rule min_tls_version --value 1.2 \\",
        "  --scope enrollment:line-03 --expires 30d \\",
        "  --reason 'PLC firmware lacks TLS 1.3 until the Q3 update'",
    ),
)
def relax(
    ctx: typer.Context,
    rule: Annotated[str, typer.Option("--rule", help="The policy field to relax.")],
    value: Annotated[str, typer.Option("--value", help="Its relaxed value.")],
    scope: ScopeOpt = "fleet",
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (required; kept in the audit log).")
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires", help="ISO 8601 time with a timezone, or a duration (7d, 12h); <= 90d."
        ),
    ] = None,
    as_json: output.JsonFlag = False,
) -> None:
    """Weaken one field past the secure baseline, for a while, with a reason (audited)."""
    cli = state(ctx)
    service = cli.platform().policy
    relaxation = service.relax(
        rule, value, scope, reason=reason or "", expires=expires or "", actor=cli.actor
    )
    now = service.clock.now()
    if as_json:
        output.emit_json(relaxation.to_json(now))
        return
    output.warn(
        f"Relaxed {relaxation.rule.value} at {relaxation.scope.key} until "
        f"{output.when(relaxation.expires_at)}: it shows in the posture report."
    )
    show_relaxations([relaxation], now, "Relaxation")


@app.command(
    "relaxations",
    epilog=output.example(
        "devicetrust policy relaxations",
        "devicetrust policy relaxations --all --json",
    ),
)
def relaxations(
    ctx: typer.Context,
    scope: Annotated[str | None, typer.Option("--scope", help="Only those of this scope.")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Also lapsed and revoked ones.")] = False,
    as_json: output.JsonFlag = False,
) -> None:
    """List relaxations (active ones unless --all), newest first."""
    service = state(ctx).platform().policy
    found = service.relaxations(scope=scope, status=None if show_all else "active", limit=1000)
    now = service.clock.now()
    if as_json:
        output.emit_json([r.to_json(now) for r in found])
    else:
        show_relaxations(found, now, "Relaxations")


@app.command(
    "revoke-relaxation",
    epilog=output.example(
        "devicetrust policy revoke-relaxation <relaxation id> \\",
        "  --reason 'firmware updated to TLS 1.3'",
    ),
)
def revoke_relaxation(
    ctx: typer.Context,
    relaxation_id: Annotated[str, typer.Argument(help="The relaxation's id.")],
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why it ends early (required).")
    ] = None,
    as_json: output.JsonFlag = False,
) -> None:
    """End a relaxation before its expiry (audited)."""
    cli = state(ctx)
    service = cli.platform().policy
    revoked = service.revoke_relaxation(relaxation_id, actor=cli.actor, reason=reason or "")
    now = service.clock.now()
    if as_json:
        output.emit_json(revoked.to_json(now))
    else:
        output.success(f"Relaxation {revoked.relaxation_id} revoked.")

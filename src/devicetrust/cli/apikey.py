"""`devicetrust apikey`: operator API keys for the REST API.

A key's token is printed once, by `create`, and never again: only its hash is stored.
"""

from __future__ import annotations

from typing import Annotated

import typer

from devicetrust.auth import ApiKey, Scope
from devicetrust.cli import output
from devicetrust.cli.context import state

app = typer.Typer(
    help="Operator API keys (scoped, stored hashed).",
    no_args_is_help=True,
    epilog=output.example("devicetrust apikey create ci-reader --scope identity:read"),
)

KeyIdArg = Annotated[str, typer.Argument(help="Key id (12 hex characters, shown by list).")]


@app.command(
    "create",
    epilog=output.example(
        "devicetrust apikey create ci-reader --scope identity:read --scope audit:read",
        "devicetrust apikey create line-op --scope provisioning:write",
    ),
)
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="What the key is for (a label).")],
    scope: Annotated[
        list[Scope] | None,
        typer.Option(
            "--scope",
            help="A scope the key grants (repeat); admin grants all. Enrollments and "
            "approvals need provisioning:read/write (identity:* does not imply them).",
        ),
    ] = None,
    as_json: output.JsonFlag = False,
) -> None:
    """Create an API key and print its token once (it cannot be shown again)."""
    cli = state(ctx)
    key, token = cli.platform().api_keys.create(name, scope or [], actor=cli.actor)
    if as_json:
        output.emit_json({**key.to_json(), "token": token})
        return
    show_token(key, token)


def show_token(key: ApiKey, token: str) -> None:
    """Hand a token over: the only time it is ever printed."""
    output.fields(
        f"API key {key.key_id} created",
        [("name", key.name), ("scopes", sorted(s.value for s in key.scopes))],
    )
    output.warn("The token is shown only now; store it in a secret manager:")
    output.out.print(token, markup=False, highlight=False, soft_wrap=True)


@app.command("list", epilog=output.example("devicetrust apikey list --json"))
def list_(
    ctx: typer.Context,
    active: Annotated[bool, typer.Option("--active", help="Hide revoked keys.")] = False,
    as_json: output.JsonFlag = False,
) -> None:
    """List API keys (never their secrets)."""
    keys = state(ctx).platform().api_keys.list(include_revoked=not active)
    if as_json:
        output.emit_json({"api_keys": [k.to_json() for k in keys]})
        return
    output.table(
        None,
        ["key id", "name", "scopes", "created", "by", "revoked"],
        [
            (
                k.key_id,
                k.name,
                sorted(s.value for s in k.scopes),
                k.created_at,
                k.created_by,
                k.revoked_at,
            )
            for k in keys
        ],
    )


@app.command("revoke", epilog=output.example("devicetrust apikey revoke 3f9a0c1d2e4b"))
def revoke(ctx: typer.Context, key_id: KeyIdArg, as_json: output.JsonFlag = False) -> None:
    """Revoke an API key at once: its next request is refused."""
    cli = state(ctx)
    key = cli.platform().api_keys.revoke(key_id, actor=cli.actor)
    if as_json:
        output.emit_json(key.to_json())
    else:
        output.success(f"API key {key.key_id} ({key.name}) revoked")

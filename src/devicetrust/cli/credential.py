"""`devicetrust credential`: a unit's device credentials -- HMAC token key versions, the
public keys it signs JWTs with -- and `verify`, which runs the real authenticator on a
token or certificate chain and says who it is or the precise refusal code.

A rotated token key is printed once (base64url) and its buffer zeroed; no other command
prints a key. Every change goes through the device-authentication service (which audits
it); this module only parses and prints.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

import typer

from devicetrust.cli import output
from devicetrust.cli.context import state
from devicetrust.deviceauth import (
    AuthenticatedDevice,
    DevicePublicKey,
    TokenKeyShown,
    TokenKeyVersion,
)
from devicetrust.domain.errors import InvalidInput
from devicetrust.domain.ids import PhysicalId
from devicetrust.policy import parse_duration, parse_expiry
from devicetrust.provisioning.symmetric import b64url
from devicetrust.runtime import Platform

SET_ID = "ID=c2c38155-b0d2-48b6-82fd-22fe3b316224"
PID = '"$ID"'
MAX_INPUT = 64 * 1024
ENTRY_POINT = "cli"
DRY_RUN_ENTRY_POINT = "cli-dry-run"

app = typer.Typer(
    help="Device credentials: HMAC token keys, JWT public keys, and a verifier.",
    no_args_is_help=True,
    epilog=output.example(
        SET_ID,
        f"devicetrust credential token-key list {PID}",
        'devicetrust credential verify --jwt "$TOKEN" \\',
        "  --audience https://api.example.com",
    ),
)
token_key_app = typer.Typer(
    help="HMAC token key versions of a unit (rotate, adopt, list, revoke).",
    no_args_is_help=True,
    epilog=output.example(SET_ID, f"devicetrust credential token-key rotate {PID} --overlap 1d"),
)
public_key_app = typer.Typer(
    help="Public keys a unit signs its JWTs with (register, list, revoke).",
    no_args_is_help=True,
    epilog=output.example(
        SET_ID, f"devicetrust credential public-key register {PID} \\", "  --file key.pem"
    ),
)
app.add_typer(token_key_app, name="token-key")
app.add_typer(public_key_app, name="public-key")

PhysicalIdArg = Annotated[str, typer.Argument(help="The unit's physical id (UUIDv4).")]
OverlapOpt = Annotated[
    str,
    typer.Option(
        "--overlap",
        help="How long the versions accepted so far keep working (0 to 30d), e.g. 1d, 12h.",
    ),
]


class _Listed(Protocol):
    def to_json(self) -> dict[str, Any]: ...


L = TypeVar("L", bound=_Listed)


def _list_of_unit(
    ctx: typer.Context,
    physical_id: str,
    as_json: bool,
    title: str,
    fetch: Callable[[Platform, PhysicalId], list[L]],
    show: Callable[[str, list[L]], None],
) -> None:
    """A `list` command: the unit (404 when unknown), then its credentials as JSON or as
    the table `show` draws under "<title> of <unit>"."""
    platform = state(ctx).platform()
    unit = platform.identity.get_physical(physical_id)
    items = fetch(platform, unit.physical_id)
    if as_json:
        output.emit_json([item.to_json() for item in items])
        return
    show(f"{title} of {unit.physical_id}", items)


# ---- token keys ------------------------------------------------------------------------------


def _version_rows(versions: list[TokenKeyVersion]) -> list[tuple[object, ...]]:
    return [
        (v.version, v.origin.value, v.created_at, v.retires_at, v.revoked_at, v.destroyed)
        for v in versions
    ]


def _show_versions(title: str, versions: list[TokenKeyVersion]) -> None:
    output.table(
        title,
        ["version", "origin", "created", "retires", "revoked", "key erased"],
        _version_rows(versions),
    )


def _show_key_once(shown: TokenKeyShown, as_json: bool) -> None:
    with shown:  # zeroes the key buffer, also when printing fails
        key = b64url(shown.key)
        if as_json:
            output.emit_json({"version": shown.version.to_json(), "key": key})
            return
        _show_versions(f"Token key of {shown.version.physical_id}", [shown.version])
        output.warn(
            "The key (base64url) is shown only now: put it on the device, then forget it. "
            "It cannot be shown again; a lost key means another rotation."
        )
        output.out.print(key, markup=False, highlight=False, soft_wrap=True)


@token_key_app.command(
    "rotate",
    epilog=output.example(
        SET_ID,
        f"devicetrust credential token-key rotate {PID}",
        f"devicetrust credential token-key rotate {PID} --overlap 12h --json",
    ),
)
def rotate(
    ctx: typer.Context,
    physical_id: PhysicalIdArg,
    overlap: OverlapOpt = "1d",
    as_json: output.JsonFlag = False,
) -> None:
    """Draw a new token key version; print the key once. Older versions retire after the
    overlap."""
    cli = state(ctx)
    window = parse_duration(overlap, what="rotation overlap", allow_zero=True)
    shown = cli.platform().device_auth.token_keys.rotate(
        physical_id, actor=cli.actor, overlap=window
    )
    _show_key_once(shown, as_json)


@token_key_app.command(
    "adopt",
    epilog=output.example(
        SET_ID,
        f"devicetrust credential token-key adopt {PID}",
        f"devicetrust credential token-key adopt {PID} --enrollment line-03",
    ),
)
def adopt(
    ctx: typer.Context,
    physical_id: PhysicalIdArg,
    enrollment: Annotated[
        str | None,
        typer.Option(
            "--enrollment",
            help="The symmetric-key enrollment (name or id) whose key the unit holds; "
            "default: the one it provisioned through, else its individual one.",
        ),
    ] = None,
    overlap: OverlapOpt = "1d",
    as_json: output.JsonFlag = False,
) -> None:
    """Make the unit's enrollment key (group-derived or individual) its current token key.
    The device already holds it: nothing secret is printed."""
    cli = state(ctx)
    window = parse_duration(overlap, what="rotation overlap", allow_zero=True)
    adopted = cli.platform().device_auth.token_keys.adopt_enrollment_key(
        physical_id, actor=cli.actor, enrollment=enrollment, overlap=window
    )
    if as_json:
        output.emit_json(adopted.to_json())
        return
    output.success(f"token key version {adopted.version} is the unit's enrollment key")
    _show_versions(f"Token key of {adopted.physical_id}", [adopted])


@token_key_app.command(
    "list", epilog=output.example(SET_ID, f"devicetrust credential token-key list {PID} --json")
)
def list_token_keys(
    ctx: typer.Context, physical_id: PhysicalIdArg, as_json: output.JsonFlag = False
) -> None:
    """List a unit's token key versions (never the keys)."""
    _list_of_unit(
        ctx, physical_id, as_json, "Token keys",
        lambda p, pid: p.device_auth.token_keys.list_versions(pid), _show_versions,
    )


@token_key_app.command(
    "revoke", epilog=output.example(SET_ID, f"devicetrust credential token-key revoke {PID} 2")
)
def revoke_token_key(
    ctx: typer.Context,
    physical_id: PhysicalIdArg,
    version: Annotated[int, typer.Argument(help="The key version to refuse from now on.", min=1)],
    as_json: output.JsonFlag = False,
) -> None:
    """Refuse a token key version at once (a leaked key); its sealed key is erased."""
    cli = state(ctx)
    revoked = cli.platform().device_auth.token_keys.revoke(physical_id, version, actor=cli.actor)
    if as_json:
        output.emit_json(revoked.to_json())
        return
    output.success(f"token key version {revoked.version} of {revoked.physical_id} revoked")


# ---- public keys -----------------------------------------------------------------------------


def _show_public_keys(title: str, keys: list[DevicePublicKey]) -> None:
    output.table(
        title,
        ["key id (JWT kid)", "algorithm", "created", "expires", "revoked"],
        [(k.key_id, k.algorithm.value, k.created_at, k.expires_at, k.revoked_at) for k in keys],
    )


def _read_file(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_INPUT + 1)
    except OSError as exc:
        raise InvalidInput(
            "cli.unreadable_file", f"cannot read {what} {path}: {exc.strerror}"
        ) from exc
    if len(data) > MAX_INPUT:
        raise InvalidInput("cli.file_too_large", f"{what} {path} is over {MAX_INPUT} bytes")
    return data


@public_key_app.command(
    "register",
    epilog=output.example(
        SET_ID,
        "openssl pkey -in device.key -pubout -out key.pem",
        f"devicetrust credential public-key register {PID} \\",
        "  --file key.pem --expires 90d",
    ),
)
def register(
    ctx: typer.Context,
    physical_id: PhysicalIdArg,
    file: Annotated[
        Path,
        typer.Option(
            "--file", help="The P-256 or Ed25519 public key (PEM or DER SPKI).", dir_okay=False
        ),
    ],
    expires: Annotated[
        str | None,
        typer.Option("--expires", help="An ISO 8601 time with a timezone, or a duration (90d)."),
    ] = None,
    as_json: output.JsonFlag = False,
) -> None:
    """Register a public key the unit signs its JWTs with (kid = SHA-256 of its SPKI)."""
    cli = state(ctx)
    data = _read_file(file, "public key")
    platform = cli.platform()
    expires_at = parse_expiry(expires, platform.clock.now()) if expires is not None else None
    key = platform.device_auth.public_keys.register(
        physical_id, data, actor=cli.actor, expires_at=expires_at
    )
    if as_json:
        output.emit_json(key.to_json())
        return
    output.success(f"public key registered; JWTs signed with it name kid {key.key_id}")
    _show_public_keys(f"Public key of {key.physical_id}", [key])


@public_key_app.command(
    "list", epilog=output.example(SET_ID, f"devicetrust credential public-key list {PID} --json")
)
def list_public_keys(
    ctx: typer.Context, physical_id: PhysicalIdArg, as_json: output.JsonFlag = False
) -> None:
    """List the public keys registered for a unit."""
    _list_of_unit(
        ctx, physical_id, as_json, "Public keys",
        lambda p, pid: p.device_auth.public_keys.list_for(pid), _show_public_keys,
    )


@public_key_app.command(
    "revoke", epilog=output.example("devicetrust credential public-key revoke <key id>")
)
def revoke_public_key(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key id (the JWT kid).")],
    as_json: output.JsonFlag = False,
) -> None:
    """Revoke a registered public key: JWTs signed with it are refused from now on."""
    cli = state(ctx)
    revoked = cli.platform().device_auth.public_keys.revoke(key_id, actor=cli.actor)
    if as_json:
        output.emit_json(revoked.to_json())
        return
    output.success(f"public key {revoked.key_id} of {revoked.physical_id} revoked")


# ---- verify ----------------------------------------------------------------------------------


def _text_or_stdin(value: str) -> str:
    """`-` reads the token from stdin (keeps it out of the shell history and `ps`)."""
    return sys.stdin.read(MAX_INPUT).strip() if value == "-" else value


def _authenticate(
    ctx: typer.Context,
    hmac: str | None,
    resource: str | None,
    jwt: str | None,
    audience: str | None,
    cert: Path | None,
    dry_run: bool,
) -> AuthenticatedDevice:
    given = [name for name, value in (("--hmac", hmac), ("--jwt", jwt), ("--cert", cert)) if value]
    if len(given) != 1:
        raise InvalidInput("cli.invalid_credential", "give exactly one of --hmac, --jwt, --cert")
    if hmac is not None and not resource:
        raise InvalidInput("cli.resource_required", "--hmac needs --resource (the token's sr)")
    if jwt is not None and not audience:
        raise InvalidInput("cli.audience_required", "--jwt needs --audience (the token's aud)")
    auth = state(ctx).platform().device_auth
    entry_point = DRY_RUN_ENTRY_POINT if dry_run else ENTRY_POINT
    if cert is not None:
        chain = _read_file(cert, "certificate chain")
        return auth.authenticate_certificate(chain, entry_point=entry_point)
    if hmac is not None and resource is not None:
        return auth.authenticate_hmac_token(
            _text_or_stdin(hmac), resource=resource, entry_point=entry_point, dry_run=dry_run
        )
    assert jwt is not None and audience is not None
    return auth.authenticate_jwt(
        _text_or_stdin(jwt), audience=audience, entry_point=entry_point, dry_run=dry_run
    )


@app.command(
    "verify",
    epilog=output.example(
        'devicetrust credential verify --hmac "$TOKEN" --resource mqtt.example.com',
        "devicetrust credential verify --jwt - --audience https://api.example.com",
        "devicetrust credential verify --cert chain.pem --json",
        "devicetrust credential verify --dry-run --jwt - --audience mqtt.example.com",
    ),
)
def verify(
    ctx: typer.Context,
    hmac: Annotated[
        str | None, typer.Option("--hmac", help="An HMAC identifier token ('-': stdin).")
    ] = None,
    resource: Annotated[
        str | None, typer.Option("--resource", help="The resource the HMAC token is for.")
    ] = None,
    jwt: Annotated[str | None, typer.Option("--jwt", help="A device JWT ('-': stdin).")] = None,
    audience: Annotated[
        str | None, typer.Option("--audience", help="The audience the JWT must name.")
    ] = None,
    cert: Annotated[
        Path | None,
        typer.Option("--cert", help="A PEM certificate chain, leaf first.", dir_okay=False),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Check everything but leave the token's nonce or jti unspent "
            "(a token already spent is still refused).",
        ),
    ] = False,
    as_json: output.JsonFlag = False,
) -> None:
    """Run the real device authenticator on a credential: print who it proves, or the
    precise refusal code (exit status 3; 7 when rate-limited). Refusals are audited. By
    default an accepted token's nonce or jti is spent, exactly as at any entry point: a
    token checked here can no longer be used by a device. With --dry-run it stays usable."""
    device = _authenticate(ctx, hmac, resource, jwt, audience, cert, dry_run)
    if as_json:
        output.emit_json(
            {**device.to_json(), "spent": not dry_run and device.method.value != "mtls"}
        )
        return
    output.fields(
        "Authenticated",
        [
            ("physical id", device.physical_id),
            ("logical name", device.logical_name),
            ("method", device.method.value),
            ("credential", device.credential_id),
            ("accepted until", device.expires_at),
        ],
        style="green",
    )
    if device.method.value == "mtls":
        return
    if dry_run:
        output.note("Dry run: a nonce or jti the token carries was not spent; it stays usable.")
    else:
        output.note("If the token carried a nonce or jti, it is now spent: it cannot be reused.")

"""`devicetrust ca`: the certificate authority's hierarchy (root, issuing, manufacturing CAs).

CA private keys never pass through this module: the CA service creates, imports and opens
them through its keyring. An imported key's password is read from an environment variable
named on the command line (or a hidden prompt), never from an argument.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from devicetrust.cli import output
from devicetrust.cli.context import state
from devicetrust.domain.errors import InvalidInput
from devicetrust.pki import CaRecord, CaRole
from devicetrust.pki.keys import KeyAlgorithm

app = typer.Typer(
    help="The certificate authority: create, show, rotate and import CAs; export the chain.",
    no_args_is_help=True,
    epilog=output.example("devicetrust ca init", "devicetrust ca chain --out chain.pem"),
)

AlgorithmOpt = Annotated[
    KeyAlgorithm | None,
    typer.Option(
        "--algorithm", help="CA key algorithm (default: pki.algorithm).", show_default=False
    ),
]
RoleOpt = Annotated[
    CaRole,
    typer.Option("--role", help="issuing (device certificates) or manufacturing (birth)."),
]


@app.command(
    "init",
    epilog=output.example("devicetrust ca init", "devicetrust ca init --algorithm ecdsa-p384"),
)
def init(
    ctx: typer.Context, algorithm: AlgorithmOpt = None, as_json: output.JsonFlag = False
) -> None:
    """Create the root, issuing and manufacturing CAs, their OCSP signers and first CRLs."""
    cli = state(ctx)
    chosen = algorithm or KeyAlgorithm.parse(cli.settings().pki.algorithm)
    hierarchy = cli.platform().pki.init_hierarchy(actor=cli.actor, algorithm=chosen)
    cas = [hierarchy.root, hierarchy.issuing, hierarchy.manufacturing]
    if as_json:
        output.emit_json(
            {
                "cas": [ca.to_json() for ca in cas],
                "ocsp_signers": [c.to_json() for c in hierarchy.ocsp_signers],
            }
        )
        return
    output.success(f"CA hierarchy created ({chosen.value})")
    ca_table(cas)
    output.note("Next: devicetrust ca chain --out chain.pem")


@app.command("show", epilog=output.example("devicetrust ca show", "devicetrust ca show --json"))
def show(ctx: typer.Context, as_json: output.JsonFlag = False) -> None:
    """Show every CA, active and retired, oldest first."""
    cas = state(ctx).platform().pki.list_cas()
    if as_json:
        output.emit_json({"cas": [ca.to_json() for ca in cas]})
        return
    if not cas:
        output.note("no CA yet: run `devicetrust ca init`")
        return
    ca_table(cas)


def ca_table(cas: list[CaRecord]) -> None:
    output.table(
        None,
        ["ca id", "role", "status", "algorithm", "subject", "not after"],
        [
            (ca.ca_id, ca.role.value, ca.status.value, ca.algorithm.value, ca.subject, ca.not_after)
            for ca in cas
        ],
    )


@app.command(
    "rotate-intermediate",
    epilog=output.example("devicetrust ca rotate-intermediate --role issuing"),
)
def rotate_intermediate(
    ctx: typer.Context,
    role: RoleOpt = CaRole.ISSUING,
    algorithm: AlgorithmOpt = None,
    as_json: output.JsonFlag = False,
) -> None:
    """Replace the issuing (or manufacturing) CA by a new key certified by the root; the old
    CA is retired and keeps its CRL and OCSP signer while what it issued is unexpired."""
    cli = state(ctx)
    ca = cli.platform().pki.rotate_intermediate(actor=cli.actor, role=role, algorithm=algorithm)
    if as_json:
        output.emit_json(ca.to_json())
        return
    output.success(f"new {ca.role.value} CA {ca.ca_id}; the previous one is retired")
    ca_table([ca])


@app.command(
    "import",
    epilog=output.example(
        "devicetrust ca import --role root --cert ca.pem --key ca.key",
        "devicetrust ca rotate-intermediate --role issuing",
    ),
)
def import_(
    ctx: typer.Context,
    cert: Annotated[
        Path, typer.Option("--cert", help="The CA certificate, PEM or DER.", dir_okay=False)
    ],
    role: Annotated[
        CaRole,
        typer.Option(
            "--role", help="root (devicetrust's CAs go below it), issuing or manufacturing."
        ),
    ],
    key: Annotated[
        Path | None,
        typer.Option("--key", help="The CA key: encrypted PKCS#8 PEM.", dir_okay=False),
    ] = None,
    key_password_env: Annotated[
        str | None,
        typer.Option(
            "--key-password-env",
            metavar="VAR",
            help="Environment variable holding the key's password (else a hidden prompt).",
        ),
    ] = None,
    key_uri: Annotated[
        str | None,
        typer.Option("--key-uri", help="Or: the key where it stays (pkcs11:... or file:...)."),
    ] = None,
    chain: Annotated[
        Path | None,
        typer.Option(
            "--chain", help="The company CAs above it, PEM (issuer first).", dir_okay=False
        ),
    ] = None,
    as_json: output.JsonFlag = False,
) -> None:
    """Import a company CA so that devicetrust chains to the company PKI."""
    if (key is None) == (key_uri is None):
        raise InvalidInput("cli.ca_key_missing", "give the CA key as --key FILE or --key-uri URI")
    cli = state(ctx)
    password = _key_password(key_password_env) if key is not None else None
    ca = cli.platform().pki.import_external_ca(
        read_file(cert),
        role=role,
        actor=cli.actor,
        key_uri=key_uri,
        key_pem=read_file(key) if key is not None else None,
        key_pem_password=password,
        chain_pem=read_file(chain) if chain is not None else None,
    )
    if as_json:
        output.emit_json(ca.to_json())
        return
    output.success(f"{ca.role.value} CA {ca.ca_id} imported: {ca.subject}")
    if role is CaRole.ROOT:
        output.note("Next: devicetrust ca rotate-intermediate --role issuing (and manufacturing)")


def _key_password(variable: str | None) -> bytes:
    if variable is not None:
        value = os.environ.get(variable)
        if not value:
            raise InvalidInput(
                "cli.key_password_missing", f"environment variable {variable[:64]} is not set"
            )
        return value.encode()
    if not sys.stdin.isatty():
        raise InvalidInput(
            "cli.key_password_missing", "name the key password's variable: --key-password-env VAR"
        )
    return str(typer.prompt("Password of the CA key", hide_input=True)).encode()


@app.command(
    "chain",
    epilog=output.example(
        "devicetrust ca chain --out chain.pem",
        "openssl verify -CAfile chain.pem cert.pem",
    ),
)
def chain_(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the PEM here (default: stdout).", dir_okay=False),
    ] = None,
    role: Annotated[
        CaRole,
        typer.Option("--role", help="Whose chain: issuing (default), manufacturing or root."),
    ] = CaRole.ISSUING,
) -> None:
    """The active CA of a role and every CA above it (up to the root), PEM: what
    `openssl verify -CAfile` takes."""
    pem = state(ctx).platform().pki.chain_pem(role)
    write_output(out, pem.encode("ascii"), what=f"{role.value} CA chain")


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput("cli.file_unreadable", f"cannot read {path}: {exc.strerror}") from exc


def write_output(out: Path | None, data: bytes, *, what: str) -> None:
    """`data` to the file `out`, or to stdout when no file is named."""
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise InvalidInput("cli.file_unwritable", f"cannot write {out}: {exc.strerror}") from exc
    output.note(f"{what} written to {out}")

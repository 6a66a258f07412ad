"""Factory side of provisioning: derive a unit's symmetric key for flashing, and the signed
manufacturing manifest of a batch (export at the factory, trust and import at the operator).

The per-device key is printed once, for the flashing station; it is never written to a file
by this command. A factory's private key is read from a PEM file (encrypted PEM: passphrase
from `DEVICETRUST_FACTORY_KEY_PASSPHRASE`) and dropped once the manifest is signed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from devicetrust.cli import output
from devicetrust.cli.context import state
from devicetrust.cli.enrollment import ManualOpt, PoolOpt, ReassignOpt, StaticOpt, allocation_of
from devicetrust.domain.errors import InvalidInput
from devicetrust.provisioning.manifest import FactoryPrivateKey
from devicetrust.provisioning.symmetric import b64url

PASSPHRASE_ENV = "DEVICETRUST_FACTORY_KEY_PASSPHRASE"  # noqa: S105 - a variable name

manifest_app = typer.Typer(
    help="Signed manufacturing manifests: trust a factory, export a batch, import it.",
    no_args_is_help=True,
    epilog=output.example(
        "devicetrust factory manifest export --factory f1 --batch B7 --key f1.pem \\",
        "  --unit <physical id> --out batch-b7.json",
    ),
)


def derive_key(
    ctx: typer.Context,
    group: Annotated[str, typer.Option("--group", "-g", help="Symmetric-key group enrollment.")],
    device: Annotated[str, typer.Option("--device", "-d", help="The unit's physical id.")],
) -> None:
    """Print a unit's key, HMAC-SHA256(group key, physical id), once, for flashing."""
    key = state(ctx).platform().provisioning.enrollments.derive_device_key(group, device)
    try:
        output.warn("Flash this key into the unit now; it is not shown again:")
        output.out.print(b64url(key))
    finally:
        key[:] = bytes(len(key))


def _private_key(path: Path) -> FactoryPrivateKey:
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        key = serialization.load_pem_private_key(
            path.read_bytes(), password=passphrase.encode() if passphrase else None
        )
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidInput(
            "cli.invalid_factory_key", f"cannot read the factory key {path}"
        ) from exc
    if isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        return key
    raise InvalidInput("cli.invalid_factory_key", "a factory key is Ed25519 or ECDSA P-256")


@manifest_app.command(
    "export",
    epilog=output.example(
        "devicetrust factory manifest export --factory plant-a --batch B-0042 \\",
        "  --key factory.key --unit <physical id> --out batch.json",
    ),
)
def export(
    ctx: typer.Context,
    factory: Annotated[str, typer.Option("--factory", help="This factory's name.")],
    batch: Annotated[str, typer.Option("--batch", help="Batch identifier.")],
    key: Annotated[Path, typer.Option("--key", help="Factory private key (PEM).")],
    unit: Annotated[list[str], typer.Option("--unit", help="Physical id (repeat).")],
    out: Annotated[Path, typer.Option("--out", help="Manifest file to write.")],
) -> None:
    """Sign and write the manifest of a batch (units and their public attestation material)."""
    data = (
        state(ctx)
        .platform()
        .provisioning.manifests.export_manifest(
            unit, factory=factory, batch=batch, key=_private_key(key)
        )
    )
    out.write_bytes(data)
    output.success(f"manifest of {len(unit)} units written to {out}")


@manifest_app.command(
    "trust",
    epilog=output.example("devicetrust factory manifest trust plant-a --public-key factory.pub"),
)
def trust(
    ctx: typer.Context,
    factory: Annotated[str, typer.Argument(help="Factory name.")],
    public_key: Annotated[Path, typer.Option("--public-key", help="Its public key (PEM).")],
) -> None:
    """Trust a factory's public key to sign manifests."""
    cli = state(ctx)
    cli.platform().provisioning.manifests.add_factory_key(
        factory, public_key.read_text(encoding="ascii"), actor=cli.actor
    )
    output.success(f"factory {factory} trusted")


@manifest_app.command(
    "import", epilog=output.example("devicetrust factory manifest import batch.json")
)
def import_(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Signed manifest file.")],
    static: StaticOpt = None,
    pool: PoolOpt = None,
    manual: ManualOpt = False,
    reassign: ReassignOpt = False,
    as_json: output.JsonFlag = False,
) -> None:
    """Verify a manifest and create its units and enrollments, all or none."""
    cli = state(ctx)
    created = cli.platform().provisioning.manifests.import_manifest(
        path.read_bytes(), allocation_of(static, pool, manual, reassign), actor=cli.actor
    )
    if as_json:
        output.emit_json(list(created))
        return
    output.success(f"{len(created)} units imported")

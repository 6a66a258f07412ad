"""The `devicetrust` command: the Typer app, its global options and the one error boundary.

Every failure a user can cause is a `DeviceTrustError`; it is caught here, once, and shown as
`error: <message> [<code>]` on stderr with the error's exit status, never as a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import OperationalError

from devicetrust.cli import (
    apikey,
    attestation,
    audit,
    ca,
    cert,
    credential,
    data,
    device,
    enrollment,
    factory,
    factory_provisioning,
    feedback,
    gateway,
    identity,
    output,
    policy,
    posture,
    server,
    simulate,
    webhook,
)
from devicetrust.cli.context import CliState
from devicetrust.cli.demo import demo
from devicetrust.cli.ingest import ingest
from devicetrust.domain.errors import DeviceTrustError

app = typer.Typer(
    name="devicetrust",
    help="Secure identities for a fleet of IoT devices, from the factory to decommissioning.",
    epilog=output.example(
        "devicetrust demo", "devicetrust identity history line-03-left-welding-12"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="TOML config file (default: $DEVICETRUST_CONFIG, else ./devicetrust.toml).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Secure identities for a fleet of IoT devices, from the factory to decommissioning."""
    cli_state = CliState(config_path=config)
    ctx.obj = cli_state
    ctx.call_on_close(cli_state.close)


app.command("init", epilog=output.example("devicetrust init"))(server.init)
app.command(
    "serve",
    epilog=output.example(
        "devicetrust serve --port 8080",
        "OCSP=http://127.0.0.1:8080/pki/ocsp",
        'openssl ocsp -issuer issuing.pem -cert cert.pem -CAfile chain.pem -url "$OCSP"',
    ),
)(server.serve)
app.command("demo", epilog=output.example("mkdir /tmp/try && cd /tmp/try && devicetrust demo"))(
    demo
)
app.command("simulate", epilog=simulate.EXAMPLES)(simulate.simulate)
app.add_typer(factory.app, name="factory")
app.add_typer(identity.app, name="identity")
app.add_typer(device.app, name="device")
app.add_typer(audit.app, name="audit")
app.add_typer(webhook.app, name="webhook")
app.add_typer(apikey.app, name="apikey")
app.add_typer(ca.app, name="ca")
app.add_typer(cert.app, name="cert")
app.add_typer(enrollment.app, name="enrollment")
app.add_typer(policy.app, name="policy")
app.add_typer(attestation.app, name="attestation")
app.add_typer(credential.app, name="credential")
app.add_typer(gateway.app, name="gateway")
app.add_typer(data.app, name="data")
app.add_typer(feedback.app, name="feedback")
app.command(
    "ingest",
    epilog=output.example(
        "devicetrust ingest --broker-dir broker --client-id ingest-1",
        "devicetrust ingest --broker-dir broker --client-id w2 --no-follow-revocations",
    ),
)(ingest)
app.command(
    "posture",
    epilog=output.example(
        "devicetrust posture",
        "devicetrust posture --device c2c38155-b0d2-48b6-82fd-22fe3b316224 --json",
    ),
)(posture.posture)
factory.app.command(
    "derive-key",
    epilog=output.example("devicetrust factory derive-key --group line-03 --device <physical id>"),
)(factory_provisioning.derive_key)
factory.app.add_typer(factory_provisioning.manifest_app, name="manifest")
app.command(
    "crl",
    epilog=output.example(
        "devicetrust crl --out crl.pem",
        "openssl verify -crl_check -CRLfile crl.pem -CAfile chain.pem cert.pem",
    ),
)(cert.crl)


# Exit status when the database failed (DeviceTrustError subclasses use 1-6).
EXIT_STORE_UNAVAILABLE = 7


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `devicetrust` script."""
    try:
        app(args=argv, prog_name="devicetrust")
    except DeviceTrustError as exc:
        output.error(exc.message, exc.code)
        raise SystemExit(exc.exit_code) from None
    except OperationalError as exc:  # the database is down, locked or its disk is full
        reason = str(exc.orig if exc.orig is not None else exc).splitlines()[0][:200]
        output.error(f"the database cannot be reached or written: {reason}", "store.unavailable")
        raise SystemExit(EXIT_STORE_UNAVAILABLE) from None


if __name__ == "__main__":
    main()

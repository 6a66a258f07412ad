"""`devicetrust gateway`: the production data plane's broker configuration (Mosquitto 2).

The command writes every file the broker and the ingest workers need into one directory
(see `docs/data-plane.md`); the logic is `devicetrust.ingest.mosquitto`.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer

from devicetrust.cli import output
from devicetrust.cli.context import state
from devicetrust.ingest import BrokerPlan, write_mosquitto_config

app = typer.Typer(
    help="The MQTT data plane: broker configuration.",
    no_args_is_help=True,
    epilog=output.example("devicetrust gateway mosquitto-config --out /etc/devicetrust/broker"),
)


@app.command(
    "mosquitto-config",
    epilog=output.example(
        "devicetrust gateway mosquitto-config --out broker --dns mqtt.plant-a.example",
        "mosquitto -c broker/mosquitto.conf",
        "devicetrust ingest --broker-dir broker",
    ),
)
def mosquitto_config(
    ctx: typer.Context,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory to write into.", file_okay=False)
    ],
    dns: Annotated[
        list[str] | None,
        typer.Option("--dns", help="DNS name devices use for the broker (repeat)."),
    ] = None,
    ip: Annotated[
        list[str] | None, typer.Option("--ip", help="IP address devices use (repeat).")
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Device listener address (default: [gateway] host).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Device listener port (default: [gateway] port)."),
    ] = None,
    backend_host: Annotated[str, typer.Option(help="Ingest listener address.")] = "127.0.0.1",
    backend_port: Annotated[
        int, typer.Option(min=1, max=65535, help="Ingest listener port.")
    ] = 8884,
    plugin: Annotated[
        Path | None,
        typer.Option(help="mosquitto_dynamic_security.so (default: found).", dir_okay=False),
    ] = None,
    as_json: output.JsonFlag = False,
) -> None:
    """Write a Mosquitto 2 configuration: TLS 1.3 with device certificates, per-device
    ACL, CRL, a server certificate from the devicetrust CA, the ingest identity and the
    dynamic security plugin for live disconnects. Without --dns/--ip the broker is named
    by [gateway] public_host, else the host of [pki] public_url."""
    cli = state(ctx)
    settings = cli.settings()
    gateway = settings.gateway
    names = [*(dns or []), *(ip or [])]
    if not names:
        from urllib.parse import urlsplit

        default = gateway.public_host or urlsplit(settings.pki_public_url).hostname
        names = [default] if default else []
    plan = BrokerPlan(
        host=host or gateway.host,
        port=port or gateway.port,
        backend_host=backend_host,
        backend_port=backend_port,
        dns_names=tuple(n for n in names if not _is_ip(n)),
        ip_addresses=tuple(n for n in names if _is_ip(n)),
        topic_prefix=gateway.topic_prefix,
        plugin=plugin,
    )
    written = write_mosquitto_config(cli.platform().pki, plan, out, actor=cli.actor)
    summary = {
        "directory": str(written.files.directory),
        "config": str(written.files.conf),
        "device_listener": f"{plan.host}:{plan.port}",
        "backend_listener": f"{plan.backend_host}:{plan.backend_port}",
        "server_serial": written.server_serial,
        "server_not_after": written.server_not_after.isoformat(),
        "dynsec_plugin": str(written.plugin),
    }
    if as_json:
        output.emit_json(summary)
    else:
        output.success(f"broker configuration written to {written.files.directory}")
        output.note(f"start it: mosquitto -c {written.files.conf}")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True

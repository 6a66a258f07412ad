"""`devicetrust demo`: the article's robot-arm scenario, played end to end on the embedded
defaults (SQLite in the data directory, the server and its MQTT gateway in this process,
the device SDK's file keystores, sealed by simulated TPMs when swtpm is installed).

1. the factory makes two robot arms (physical identities, keys, birth certificates);
2. unit A provisions over HTTPS as `line-03-left-welding-12`, connects over MQTT with mutual
   TLS, sends diagnostics and telemetry, receives feedback;
3. A malfunctions and unit B replaces it: A's certificate is revoked, its live connection
   dropped, and B provisions into `line-03-left-welding-12`;
4. the diagnostics history of the name runs across A and B, A's telemetry stays with A, and
   a subscribed webhook received `device.replaced`;
5. a third unit is quarantined in a compromised-device drill and refused on reconnection;
6. `audit verify` passes and the posture report is printed.

The demo is a user of the platform: the operator's steps call the same services as the API
and the CLI; the units act only over the network (`demo_device`). The server runs on free
loopback ports (`demo_setup`) and stops at the end; the data directory is left to explore
with the CLI and the API (docs/demo.md). Safe to run again in the same folder (with a
configured KEK): the name is taken over by the new units.
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.rule import Rule

from devicetrust.cli import output
from devicetrust.cli.context import database_location, state
from devicetrust.cli.demo_drill import audit_and_posture, quarantine_drill
from devicetrust.cli.demo_narration import Narrator
from devicetrust.cli.demo_receiver import PATH as RECEIVER_PATH
from devicetrust.cli.demo_receiver import WebhookReceiver
from devicetrust.cli.demo_scenario import (
    LOGICAL_NAME,
    Scene,
    factory,
    history,
    replacement,
    unit_a_on_the_line,
)
from devicetrust.cli.demo_setup import DemoPlatform, open_demo
from devicetrust.cli.embedded_server import EmbeddedServer
from devicetrust.runtime import Platform

__all__ = ["demo"]


def demo(ctx: typer.Context) -> None:
    """Play the robot-arm scenario end to end, on a server started in this process.

    Factory, HTTPS provisioning, MQTT with mutual TLS, replacement, signed webhook,
    quarantine drill, audit and posture; the data directory is left to explore."""
    cli = state(ctx)
    settings = cli.settings()
    narrator = Narrator()
    setup = open_demo(settings, actor=cli.actor)
    platform = setup.platform
    # The units' SDK logs each refused reconnection; the demo narrates them itself.
    device_logs = logging.getLogger("devicetrust.device")
    level = device_logs.level
    device_logs.setLevel(logging.ERROR)
    try:
        _title(setup, database_location(settings), cli.actor)
        _play(platform, cli.actor, narrator, ephemeral_kek=setup.ephemeral_kek)
    finally:
        device_logs.setLevel(level)
        platform.close()
    output.out.print()
    output.out.print(Rule(f"demo complete in {narrator.elapsed():.1f} s", style="green"))
    _explore(settings.data_dir)


def _play(platform: Platform, actor: str, narrator: Narrator, *, ephemeral_kek: bool) -> None:
    receiver = WebhookReceiver(platform.clock)
    receiver.start()
    webhook_id: str | None = None
    try:
        with EmbeddedServer(platform) as server:
            ca_file = _ca_bundle(platform, server.ca_pem)
            narrator.said(
                f"server: API {server.url} (HTTPS), MQTT gateway 127.0.0.1:"
                f"{server.gateway_port} (TLS 1.3), in this process"
            )
            _forget_stale_demo_webhooks(platform, actor)
            webhook, secret = platform.webhooks.add(receiver.url, ["device.*"], actor=actor)
            webhook_id = webhook.webhook_id
            receiver.trust(secret)
            narrator.said(f"webhook {webhook_id}: a receiving system on {receiver.url}")
            scene = Scene(platform, actor, narrator, server.url, ca_file, receiver)
            try:
                factory(scene)
                unit_a_on_the_line(scene)
                replacement(scene)
                history(scene)
                quarantine_drill(scene)
                audit_and_posture(scene)
            finally:
                scene.close()
    finally:
        if webhook_id is not None and ephemeral_kek:
            # Its secret is sealed under a key that dies with this process: remove it rather
            # than let it dead-letter later.
            platform.webhooks.delete(webhook_id, actor=actor)
        receiver.stop()


def _ca_bundle(platform: Platform, pem: str) -> Path:
    """The platform's CA certificates, as the factory gives them to its units (public)."""
    folder = platform.settings.data_dir / "devices"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / "platform-ca.pem"
    path.write_text(pem)
    return path


def _title(setup: DemoPlatform, where: str, actor: str) -> None:
    kek = "in memory, this run only" if setup.ephemeral_kek else "configured"
    output.fields(
        "devicetrust demo: the robot-arm scenario",
        [
            ("data", where),
            ("key-encryption key", kek),
            ("CA", "created now" if setup.created_ca else "the data directory's"),
            ("logical identity", LOGICAL_NAME),
            ("actor", actor),
        ],
        style="cyan",
    )


def _forget_stale_demo_webhooks(platform: Platform, actor: str) -> None:
    """The webhook of an earlier run points at a receiver that is gone: remove it."""
    for hook in platform.webhooks.list():
        if hook.url.startswith("http://127.0.0.1:") and hook.url.endswith(RECEIVER_PATH):
            platform.webhooks.delete(hook.webhook_id, actor=actor)


def _explore(data_dir: Path) -> None:
    output.note(f"The data is in {data_dir}; explore it (docs/demo.md):")
    for line in (
        f"devicetrust identity history {LOGICAL_NAME}",
        f"devicetrust data diagnostics {LOGICAL_NAME} --since 1h",
        "devicetrust device list",
        "devicetrust audit verify",
        "devicetrust posture",
    ):
        output.out.print(f"  {line}", markup=False, highlight=False)

"""`devicetrust demo`: the article's robot-arm scenario, played end to end on the embedded defaults.

A robotic welding arm gets a physical identity at the factory, takes the logical identity
`line-03-left-welding-12` on the line, malfunctions and is replaced by a second unit; the
history shows both, another system learns of the replacement through a signed webhook, and
the audit chain verifies. The demo is a user of the platform: every step calls the same
services as the API and the other commands, never the database directly.

Safe to run again in the same folder: the identity is reused and its current holder becomes
the unit that fails. Without a configured key-encryption key it uses a throw-away in-memory
one (never written anywhere); the webhook sealed under it is removed before the demo ends.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import typer
from rich.rule import Rule
from rich.text import Text

from devicetrust.cli import output
from devicetrust.cli.audit import head_hash
from devicetrust.cli.context import CliState, database_location, state
from devicetrust.cli.demo_receiver import PATH as RECEIVER_PATH
from devicetrust.cli.demo_receiver import Delivery, WebhookReceiver
from devicetrust.cli.device import show_unit
from devicetrust.cli.identity import history_table
from devicetrust.domain.errors import ConfigurationError, NotFound
from devicetrust.domain.events import EventType
from devicetrust.domain.lifecycle import DeviceState, ReplacementFate
from devicetrust.domain.records import LogicalIdentity, PhysicalIdentity, Replacement
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.runtime import Platform, load_vault
from devicetrust.vault import KEK_SIZE, Vault

LOGICAL_NAME = "line-03-left-welding-12"
ATTRIBUTES = {
    "site": "plant-a",
    "line": "line-03",
    "role": "welding",
    "tags": ["left", "robot-arm"],
}
MODEL = "RA-7 welding arm"
DELIVERY_TIMEOUT_SECONDS = 20.0
EXIT_DEMO_FAILED = 1


@dataclass(frozen=True, slots=True)
class _Setup:
    platform: Platform
    ephemeral_kek: bool


def demo(ctx: typer.Context) -> None:
    """Play the robot-arm scenario: register, bind, replace, history, signed webhook, audit."""
    cli = state(ctx)
    setup = _open(cli)
    platform = setup.platform
    _title(cli, setup)
    receiver = WebhookReceiver(platform.clock)
    receiver.start()
    webhook_id: str | None = None
    try:
        _forget_stale_demo_webhooks(platform, cli.actor)
        webhook, secret = platform.webhooks.add(receiver.url, ["device.*"], actor=cli.actor)
        webhook_id = webhook.webhook_id
        receiver.trust(secret)
        _step(
            1,
            "A local system subscribes to device events",
            f"webhook receiver listening on {receiver.url}, registered for device.*",
        )
        replacement = _scenario(platform, cli.actor)
        delivery = _await_delivery(platform, receiver, replacement)
        _verify_audit(platform)
    finally:
        if webhook_id is not None:
            platform.webhooks.delete(webhook_id, actor=cli.actor)
        receiver.stop()
    _step(8, "Clean up", "demo webhook removed, receiver stopped")
    if not delivery.signature_valid:
        raise typer.Exit(EXIT_DEMO_FAILED)
    output.out.print(Rule("demo complete", style="green"))


def _open(cli: CliState) -> _Setup:
    """The configured KEK, or a throw-away one for this run only (never written to disk)."""
    settings = cli.settings()
    try:
        vault = load_vault(settings)
        ephemeral = False
    except ConfigurationError as exc:
        if exc.code != "config.kek_missing":
            raise
        key = bytearray(os.urandom(KEK_SIZE))
        vault = Vault.from_key(key)
        key[:] = bytes(KEK_SIZE)
        ephemeral = True
    return _Setup(cli.platform(vault=vault), ephemeral)


def _title(cli: CliState, setup: _Setup) -> None:
    where = database_location(cli.settings())
    kek = "in-memory, this run only" if setup.ephemeral_kek else "configured"
    output.fields(
        "devicetrust demo: the robot-arm scenario",
        [("data", where), ("key-encryption key", kek), ("actor", cli.actor)],
        style="cyan",
    )


def _forget_stale_demo_webhooks(platform: Platform, actor: str) -> None:
    """A demo interrupted before its clean-up leaves its loopback webhook behind; its secret
    was sealed under a key that may be gone, so remove it rather than let it dead-letter."""
    for hook in platform.webhooks.list():
        parts = urlsplit(hook.url)
        if parts.hostname == "127.0.0.1" and parts.path == RECEIVER_PATH:
            platform.webhooks.delete(hook.webhook_id, actor=actor)


def _scenario(platform: Platform, actor: str) -> Replacement:
    identity = platform.identity
    old_unit, logical = _first_unit(identity, actor)
    _step(
        4,
        f"Unit {_short(old_unit.physical_id)} malfunctions and is replaced",
        "the factory registers a new unit; one atomic operation ends the old binding, binds "
        "the new unit and decommissions the old one",
    )
    new_unit = identity.register(_unit_spec(), actor=actor)
    show_unit(new_unit, title="Replacement unit registered at the factory")
    replacement = identity.replace(
        logical.name,
        new_unit.physical_id,
        actor=actor,
        old_physical_id=old_unit.physical_id,
        fate=ReplacementFate.DECOMMISSIONED,
        reason="malfunction",
    )
    identity.set_state(new_unit.physical_id, DeviceState.ACTIVE, actor=actor, reason="in service")
    old_now = identity.get_physical(old_unit.physical_id)
    output.fields(
        f"device.replaced: {replacement.logical_name}",
        [
            ("old unit", replacement.old_physical_id),
            ("old unit is now", old_now.state.value),
            ("new unit", replacement.new_physical_id),
            ("at", replacement.at),
            ("event id", replacement.event_id),
        ],
    )
    _show_history(identity, logical.name, now=platform.clock.now())
    return replacement


def _first_unit(identity: IdentityService, actor: str) -> tuple[PhysicalIdentity, LogicalIdentity]:
    """Steps 2-3: the unit that will fail, holding the logical identity and active.

    On a first run it is a new unit; on a re-run, whoever holds the identity now."""
    existing = _existing_identity(identity)
    if existing is not None and existing.physical_id is not None:
        holder = identity.get_physical(existing.physical_id)
        _step(
            2,
            "Factory: the unit on the line was registered by an earlier run",
            "its physical identity is a UUIDv4 from the OS CSPRNG, immutable, never transferred",
        )
        show_unit(holder, title="Current holder")
        _step(
            3,
            f"Line: {existing.name} exists already",
            f"it is held by {holder.physical_id} ({holder.state.value}); this unit will fail",
        )
        return holder, existing
    _step(
        2,
        "Factory: a unit gets its physical identity",
        "a UUIDv4 from the OS CSPRNG: unique, unforgeable, immutable, never transferred",
    )
    unit = identity.register(_unit_spec(), actor=actor)
    show_unit(unit, title="Unit registered at the factory")
    if existing is None:
        logical = identity.create_logical(LOGICAL_NAME, ATTRIBUTES, actor=actor)
        how = f"logical identity {logical.name} created ({_attributes(logical)}); "
    else:
        logical, how = existing, f"logical identity {existing.name} reused; "
    _step(
        3,
        f"Line: the unit is provisioned as {logical.name}",
        how + "it is bound to the unit, which becomes provisioned, then active",
    )
    identity.bind(logical.name, unit.physical_id, actor=actor, reason="provisioned")
    unit = identity.set_state(
        unit.physical_id, DeviceState.ACTIVE, actor=actor, reason="in service"
    )
    show_unit(unit, title=f"{logical.name} on the line")
    return unit, identity.get_logical(logical.name)


def _existing_identity(identity: IdentityService) -> LogicalIdentity | None:
    try:
        return identity.get_logical(LOGICAL_NAME)
    except NotFound:
        return None


def _show_history(identity: IdentityService, name: str, *, now: datetime) -> None:
    bindings = identity.history_of_logical(name)
    _step(5, f"History of {name}", "diagnostics history continues under the logical identity")
    history_table(bindings, title=f"Units that were {name} (oldest first)")
    previous = bindings[-2]  # the binding the replacement just ended
    moment = previous.started_at + ((previous.ended_at or now) - previous.started_at) / 2
    then = identity.holder_at(name, moment)
    current = identity.holder_at(name, now)
    output.table(
        f"Which unit was {name} at time T?",
        ["T", "unit"],
        [
            (moment, then.physical_id if then else "nobody"),
            (now, current.physical_id if current else "nobody"),
        ],
    )


def _await_delivery(
    platform: Platform, receiver: WebhookReceiver, replacement: Replacement
) -> Delivery:
    """Step 6: run the dispatcher until the receiver has the `device.replaced` event."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
    while True:
        platform.dispatcher.run_once()
        found = _received(receiver, replacement.event_id)
        if found is not None or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if found is None:
        output.error(
            f"the receiver did not get the device.replaced event within "
            f"{DELIVERY_TIMEOUT_SECONDS:.0f} s (see `devicetrust webhook deliveries`)",
            "demo.not_delivered",
        )
        raise typer.Exit(EXIT_DEMO_FAILED)
    verdict = "VALID" if found.signature_valid else f"INVALID ({found.verdict})"
    document = found.document()
    _step(
        6,
        "Other systems are told",
        f"the receiver got {document.get('type')} for {document.get('subject')} "
        f"with a {verdict} DeviceTrust-Signature",
    )
    data = document.get("data") if isinstance(document.get("data"), dict) else {}
    output.fields(
        "Webhook delivery, as the receiver recorded it",
        [
            ("event id", document.get("id")),
            ("type", document.get("type")),
            ("old unit", data.get("old_physical_id") if data else None),
            ("new unit", data.get("new_physical_id") if data else None),
            ("signature", verdict),
            ("deliveries received", len(receiver.deliveries())),
        ],
        style="green" if found.signature_valid else "red",
    )
    return found


def _received(receiver: WebhookReceiver, event_id: str) -> Delivery | None:
    for delivery in receiver.deliveries():
        document = delivery.document()
        if document.get("id") == event_id and document.get("type") == EventType.DEVICE_REPLACED:
            return delivery
    return None


def _verify_audit(platform: Platform) -> None:
    """Step 7: the hash chain of the audit log verifies from the first entry to the head."""
    result = platform.audit.verify()
    broken = result.first_break
    if broken is not None:
        output.error(
            f"audit log broken at entry {broken.seq}: {broken.reason}", "audit.chain_broken"
        )
        raise typer.Exit(EXIT_DEMO_FAILED)
    _step(7, "audit verify passes", "every entry is hash-chained (SHA-256) to the one before")
    output.fields(
        "Audit log",
        [
            ("entries", result.count),
            ("head seq", result.head_seq),
            ("head hash", head_hash(platform.audit, result.head_seq)),
        ],
        style="green",
    )


def _unit_spec() -> UnitSpec:
    tag = secrets.token_hex(3).upper()
    return UnitSpec(
        model=MODEL,
        hardware_serials={"controller": f"CTL-{tag}", "arm": f"ARM-{tag}", "tpm": f"TPM-{tag}"},
    )


def _step(number: int, title: str, detail: str) -> None:
    output.out.print()
    output.out.print(Rule(Text(f"{number}. {title}", style="bold"), align="left"))
    output.out.print(Text(detail))


def _short(physical_id: str) -> str:
    return physical_id.split("-", 1)[0]


def _attributes(logical: LogicalIdentity) -> str:
    return ", ".join(f"{k}={v}" for k, v in logical.attributes.items() if k != "tags")

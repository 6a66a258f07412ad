"""`devicetrust webhook`: subscriptions of other systems to devicetrust events.

The signing secret is printed once, by `add`; afterwards it exists only sealed in the database.
"""

from __future__ import annotations

from typing import Annotated

import typer

from devicetrust.cli import output
from devicetrust.cli.context import state
from devicetrust.events import Delivery, DeliveryStatus, Webhook

app = typer.Typer(
    help="Webhooks: signed event deliveries to other systems.",
    no_args_is_help=True,
    epilog=output.example(
        "devicetrust webhook add https://mes.example.com/hooks --event 'device.*'"
    ),
)

WebhookIdArg = Annotated[str, typer.Argument(help="Webhook id (UUID, shown by list).")]


@app.command(
    "add",
    epilog=output.example(
        "devicetrust webhook add https://mes.example.com/hooks --event 'device.*'"
    ),
)
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="Where to POST events (http or https).")],
    event: Annotated[
        list[str] | None,
        typer.Option(
            "--event",
            "-e",
            help="Event type or family such as device.* (repeat; default: every event).",
        ),
    ] = None,
    as_json: output.JsonFlag = False,
) -> None:
    """Subscribe a URL to events; prints the signing secret once."""
    cli = state(ctx)
    webhook, secret = cli.platform().webhooks.add(url, event or None, actor=cli.actor)
    if as_json:
        output.emit_json({**webhook.to_json(), "secret": secret})
        return
    show_webhook(webhook, title=f"Webhook {webhook.webhook_id} added")
    output.warn(
        "Signing secret, shown only now: give it to the receiver, which checks the "
        "DeviceTrust-Signature header of every request with it:"
    )
    output.out.print(secret, markup=False, highlight=False, soft_wrap=True)


@app.command("list", epilog=output.example("devicetrust webhook list --json"))
def list_(ctx: typer.Context, as_json: output.JsonFlag = False) -> None:
    """List webhooks (never their secrets)."""
    hooks = state(ctx).platform().webhooks.list()
    if as_json:
        output.emit_json({"webhooks": [h.to_json() for h in hooks]})
        return
    output.table(
        None,
        ["id", "url", "events", "enabled", "created", "by"],
        [
            (h.webhook_id, h.url, h.event_types, h.enabled, h.created_at, h.created_by)
            for h in hooks
        ],
    )


@app.command(
    "remove",
    epilog=output.example("devicetrust webhook remove 6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5"),
)
def remove(ctx: typer.Context, webhook_id: WebhookIdArg, as_json: output.JsonFlag = False) -> None:
    """Delete a webhook; deliveries still pending for it are dropped."""
    cli = state(ctx)
    gone = cli.platform().webhooks.delete(webhook_id, actor=cli.actor)
    if as_json:
        output.emit_json(gone.to_json())
    else:
        output.success(f"webhook {gone.webhook_id} ({gone.url}) removed")


@app.command("deliveries", epilog=output.example("devicetrust webhook deliveries --status dead"))
def deliveries(
    ctx: typer.Context,
    status: Annotated[
        DeliveryStatus | None, typer.Option("--status", help="Only deliveries in this state.")
    ] = None,
    webhook_id: Annotated[
        str | None, typer.Option("--webhook", help="Only deliveries of this webhook.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
    as_json: output.JsonFlag = False,
) -> None:
    """List webhook deliveries, newest first (pending, delivered, dead)."""
    found = state(ctx).platform().dispatcher.list_deliveries(status, limit, webhook_id=webhook_id)
    if as_json:
        output.emit_json({"deliveries": [d.to_json() for d in found]})
        return
    output.table(
        None,
        ["id", "webhook", "event", "status", "attempts", "next attempt", "last error"],
        [
            (
                d.delivery_id,
                d.webhook_id,
                d.event_type,
                d.status.value,
                d.attempts,
                d.next_attempt_at if d.status is DeliveryStatus.PENDING else None,
                d.last_error,
            )
            for d in found
        ],
    )


@app.command("redeliver", epilog=output.example("devicetrust webhook redeliver 42"))
def redeliver(
    ctx: typer.Context,
    delivery_id: Annotated[int, typer.Argument(help="Delivery id (shown by deliveries).")],
    as_json: output.JsonFlag = False,
) -> None:
    """Give a dead delivery a fresh set of attempts, starting now."""
    cli = state(ctx)
    delivery: Delivery = cli.platform().dispatcher.redeliver(delivery_id, actor=cli.actor)
    if as_json:
        output.emit_json(delivery.to_json())
    else:
        output.success(f"delivery {delivery.delivery_id} is pending again")


def show_webhook(webhook: Webhook, *, title: str) -> None:
    output.fields(
        title,
        [
            ("id", webhook.webhook_id),
            ("url", webhook.url),
            ("events", webhook.event_types),
            ("enabled", webhook.enabled),
        ],
    )

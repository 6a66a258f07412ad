"""`devicetrust feedback`: messages from the backend to a device, addressed to its logical
identity -- send one, see its delivery status, list an identity's.

Status: pending (waiting for a holder that is online) -> published (the gateway or broker
took it) -> delivered (the device acknowledged it; embedded gateway), or expired. The
feedback queue checks and writes; this module only parses and prints.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from devicetrust.cli import output
from devicetrust.cli.context import state
from devicetrust.domain.errors import InvalidInput
from devicetrust.ingest.feedback import MAX_FEEDBACK_BYTES, FeedbackQueue
from devicetrust.ingest.records import Feedback
from devicetrust.ingest.window import lifetime

NAME = "line-03-left-welding-12"

app = typer.Typer(
    help="Feedback to devices: send to a logical identity, follow its delivery.",
    no_args_is_help=True,
    epilog=output.example(
        f"devicetrust feedback send {NAME} \\",
        "  --json-payload '{\"speed\": 0.8}'",
        f"devicetrust feedback list {NAME}",
    ),
)

NameArg = Annotated[str, typer.Argument(help="The logical identity (current or former name).")]


def _payload(text: str) -> dict[str, Any]:
    if len(text.encode("utf-8")) > MAX_FEEDBACK_BYTES:
        raise InvalidInput(
            "ingest.feedback_too_large", f"feedback is at most {MAX_FEEDBACK_BYTES} bytes"
        )
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:  # JSONDecodeError, and NaN / Infinity
        raise InvalidInput("cli.bad_json", f"--json-payload is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidInput("cli.bad_json", "--json-payload is a JSON object, e.g. '{\"a\": 1}'")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _show(feedback: Feedback, as_json: bool) -> None:
    if as_json:
        output.emit_json(feedback.to_json())
        return
    output.fields(
        f"Feedback {feedback.feedback_id}",
        [
            ("logical name", feedback.logical_name),
            ("status", feedback.status.value),
            ("created", feedback.created_at),
            ("expires", feedback.expires_at),
            ("unit", feedback.physical_id),
            ("published", feedback.published_at),
            ("delivered", feedback.delivered_at),
            ("payload", json.dumps(feedback.payload, ensure_ascii=False, sort_keys=True)),
        ],
    )


@app.command(
    "send",
    epilog=output.example(
        f"devicetrust feedback send {NAME} \\",
        "  --json-payload '{\"speed\": 0.8}'",
        f"devicetrust feedback send {NAME} \\",
        "  --json-payload '{\"recalibrate\": true}' --ttl 30m --json",
    ),
)
def send(
    ctx: typer.Context,
    logical_name: NameArg,
    json_payload: Annotated[
        str,
        typer.Option(
            "--json-payload", help="The message: a JSON object (at most 16 KiB)."
        ),
    ],
    ttl: Annotated[
        str,
        typer.Option("--ttl", help="How long it may wait for the device (up to 30d): 1h, 30m."),
    ] = "1h",
    as_json: output.JsonFlag = False,
) -> None:
    """Queue feedback for whichever unit holds the logical identity when it is published."""
    cli = state(ctx)
    body = _payload(json_payload)
    life = lifetime(ttl)
    platform = cli.platform()
    sent = FeedbackQueue(platform.db, platform.clock).send(
        logical_name, body, actor=cli.actor, ttl=life
    )
    if as_json:
        output.emit_json(sent.to_json())
        return
    output.success(f"feedback {sent.feedback_id} queued for {sent.logical_name}")
    _show(sent, False)


@app.command(
    "status",
    epilog=output.example(
        "devicetrust feedback status 0b7c3f3e-3d5b-4c61-9d7e-2f4a8f2f6a11 --json"
    ),
)
def status(
    ctx: typer.Context,
    feedback_id: Annotated[str, typer.Argument(help="The id `feedback send` printed.")],
    as_json: output.JsonFlag = False,
) -> None:
    """One feedback message and its delivery status."""
    platform = state(ctx).platform()
    _show(FeedbackQueue(platform.db, platform.clock).get(feedback_id.strip()), as_json)


@app.command("list", epilog=output.example(f"devicetrust feedback list {NAME} --limit 20"))
def list_feedback(
    ctx: typer.Context,
    logical_name: NameArg,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 100,
    as_json: output.JsonFlag = False,
) -> None:
    """Feedback addressed to a logical identity, newest first."""
    if not 1 <= limit <= 1000:
        raise InvalidInput("cli.bad_limit", "--limit is 1-1000")
    platform = state(ctx).platform()
    found = FeedbackQueue(platform.db, platform.clock).list_for(logical_name, limit=limit)
    if as_json:
        output.emit_json({"items": [f.to_json() for f in found]})
        return
    output.table(
        f"Feedback for {logical_name}",
        ["id", "status", "created", "expires", "unit", "published", "delivered"],
        [
            (f.feedback_id, f.status.value, f.created_at, f.expires_at, f.physical_id,
             f.published_at, f.delivered_at)
            for f in found
        ],
    )

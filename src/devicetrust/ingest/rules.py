"""Pure decisions of the message store: payload checks and the idempotence key. No I/O.

A payload is a UTF-8 JSON object of at most `max_bytes` bytes; anything else is refused
with a stable reason code (and never crashes the caller). The idempotence key is the
device's message id when it sent one (1-64 printable ASCII characters), else the SHA-256 of
the stream and payload bytes: a broker redelivery carries the same bytes, so it maps to
the same key.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from devicetrust.domain.errors import InvalidInput, PayloadTooLarge
from devicetrust.ingest.records import MessageKind

DEFAULT_MAX_PAYLOAD = 64 * 1024
MAX_MESSAGE_ID = 64


def parse_payload(payload: bytes, *, max_bytes: int = DEFAULT_MAX_PAYLOAD) -> dict[str, Any]:
    """The JSON object in `payload`, or a refusal (`ingest.payload_too_large`,
    `ingest.payload_not_json`, `ingest.payload_not_object`)."""
    if len(payload) > max_bytes:
        raise PayloadTooLarge(
            "ingest.payload_too_large",
            f"payload of {len(payload)} bytes exceeds {max_bytes}",
            size=len(payload),
        )
    try:
        value = json.loads(payload.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("ingest.payload_not_json", "payload is not UTF-8 JSON") from exc
    if not isinstance(value, dict):
        raise InvalidInput("ingest.payload_not_object", "payload must be a JSON object")
    return value


def _no_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259 §6) and PostgreSQL's JSON refuses them.
    raise ValueError(f"{name} is not JSON")


def message_key(kind: MessageKind, payload: bytes, message_id: str | None) -> str:
    """The idempotence key of a report (see the module doc)."""
    if message_id is not None:
        if not 1 <= len(message_id) <= MAX_MESSAGE_ID or not all(
            0x21 <= ord(c) <= 0x7E for c in message_id
        ):
            raise InvalidInput(
                "ingest.bad_message_id",
                f"a message id is 1-{MAX_MESSAGE_ID} printable ASCII characters",
            )
        return message_id
    digest = hashlib.sha256(kind.value.encode("ascii") + b"\0" + payload)
    return digest.hexdigest()

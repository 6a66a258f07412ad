"""Pure decisions of the message store: payload checks and the idempotence key. No I/O.

A payload is an object encoded as JSON, CBOR or MessagePack (by its content type, see
`ingest.encodings`) of at most `max_bytes` bytes, that fits its stream's schema
(`ingest.schemas`); anything else is refused with a stable reason code (and never crashes
the caller). The idempotence key is the device's message id when it sent one (1-64
printable ASCII characters), else the SHA-256 of the stream and payload bytes: a broker
redelivery carries the same bytes, so it maps to the same key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from devicetrust.domain.errors import InvalidInput
from devicetrust.ingest.encodings import DEFAULT_MAX_PAYLOAD, DecodeLimits, decode_payload
from devicetrust.ingest.records import MessageKind
from devicetrust.ingest.schemas import DEFAULT_SCHEMAS, StreamSchema, check_document

__all__ = ["DEFAULT_MAX_PAYLOAD", "MAX_MESSAGE_ID", "message_key", "parse_payload", "read_report"]

MAX_MESSAGE_ID = 64


def parse_payload(
    payload: bytes, *, max_bytes: int = DEFAULT_MAX_PAYLOAD, content_type: str | None = None
) -> dict[str, Any]:
    """The object in `payload` (JSON unless `content_type` says otherwise), or a refusal
    (`ingest.payload_too_large`, `ingest.payload_not_json`, `ingest.payload_not_object`,
    ... see `ingest.encodings.REASONS`)."""
    return decode_payload(payload, content_type, DecodeLimits(max_bytes=max_bytes))


def read_report(
    kind: MessageKind,
    payload: bytes,
    content_type: str | None,
    *,
    limits: DecodeLimits,
    schemas: Mapping[MessageKind, StreamSchema] = DEFAULT_SCHEMAS,
) -> dict[str, Any]:
    """A report's document: decoded by its content type, then checked against its stream's
    schema (`ingest.schema_violation`)."""
    document = decode_payload(payload, content_type, limits)
    check_document(kind, document, schemas)
    return document


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

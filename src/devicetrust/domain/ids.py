"""Identifiers: the immutable physical identity and the mutable logical name.

A physical id is a UUIDv4 drawn from the OS CSPRNG (`secrets`), never derived from a serial
number or a clock, so it cannot be guessed or forged by enumeration.
"""

from __future__ import annotations

import re
import secrets
import uuid
from typing import NewType

from devicetrust.domain.errors import InvalidInput

PhysicalId = NewType("PhysicalId", str)
LogicalName = NewType("LogicalName", str)

# Lowercase letters, digits, dashes and dots; starts and ends with a letter or digit;
# no two dots in a row (names are used in topics and DNS-like contexts).
_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]|\.(?!\.))*[a-z0-9]$|^[a-z0-9]$")
MAX_NAME_LENGTH = 128


def new_physical_id() -> PhysicalId:
    """A fresh UUIDv4 from 122 CSPRNG bits (RFC 9562 §5.4)."""
    raw = bytearray(secrets.token_bytes(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return PhysicalId(str(uuid.UUID(bytes=bytes(raw))))


def parse_physical_id(value: str) -> PhysicalId:
    """Validate and canonicalise (lowercase, hyphenated) a physical id."""
    text = value.strip().lower()
    if text.startswith("urn:uuid:"):
        text = text[len("urn:uuid:") :]
    try:
        parsed = uuid.UUID(text)
    except ValueError as exc:
        raise InvalidInput(
            "identity.invalid_physical_id", f"not a UUID: {value[:64]!r}", value=value[:64]
        ) from exc
    if str(parsed) != text or parsed.version != 4:
        raise InvalidInput(
            "identity.invalid_physical_id",
            f"physical ids are canonical UUIDv4 strings, got {value[:64]!r}",
            value=value[:64],
        )
    return PhysicalId(text)


def parse_logical_name(value: str) -> LogicalName:
    """Validate a logical name such as `line-03-left-welding-12`."""
    if not isinstance(value, str) or not value:
        raise InvalidInput("identity.invalid_name", "a logical name must be a non-empty string")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInput(
            "identity.invalid_name", f"a logical name has at most {MAX_NAME_LENGTH} characters"
        )
    if not _NAME_RE.match(value):
        raise InvalidInput(
            "identity.invalid_name",
            f"invalid logical name {value[:64]!r}: use lowercase letters, digits, dashes and "
            "single dots, starting and ending with a letter or digit",
            value=value[:64],
        )
    return LogicalName(value)

"""Validation of the mutable attributes of a logical identity (site, line, role, tags)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from devicetrust.domain.errors import InvalidInput

KNOWN_KEYS = frozenset({"site", "line", "role", "tags", "description"})
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_VALUE_LENGTH = 256
MAX_TAGS = 64
MAX_KEYS = 32


def validate_attributes(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Return a clean copy: string values, `tags` a list of unique strings; refuse the rest."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("identity.invalid_attributes", "attributes must be an object")
    if len(raw) > MAX_KEYS:
        raise InvalidInput("identity.invalid_attributes", f"at most {MAX_KEYS} attributes")
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise InvalidInput(
                "identity.invalid_attributes",
                f"attribute names are lowercase identifiers, got {str(key)[:64]!r}",
            )
        if value is None:
            continue  # None removes the attribute in an update
        if key == "tags":
            clean[key] = _validate_tags(value)
            continue
        if not isinstance(value, str) or len(value) > MAX_VALUE_LENGTH or "\x00" in value:
            raise InvalidInput(
                "identity.invalid_attributes",
                f"attribute {key!r} must be a string of at most {MAX_VALUE_LENGTH} characters",
            )
        clean[key] = value
    return clean


def _validate_tags(value: Any) -> list[str]:
    if not isinstance(value, list | tuple) or len(value) > MAX_TAGS:
        raise InvalidInput("identity.invalid_attributes", f"tags is a list of at most {MAX_TAGS}")
    tags: list[str] = []
    for tag in value:
        if not isinstance(tag, str) or not tag or len(tag) > 64 or "\x00" in tag:
            raise InvalidInput("identity.invalid_attributes", "each tag is a 1-64 char string")
        if tag not in tags:
            tags.append(tag)
    return tags


def merge_attributes(current: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Apply an update: keys set to None are removed, others replaced."""
    merged = dict(current)
    for key, value in update.items():
        if value is None:
            merged.pop(key, None)
    merged.update(validate_attributes(update))
    return merged


MAX_REASON_LENGTH = 64


def clean_reason(value: str) -> str:
    """A short free-text reason recorded with a binding or state change."""
    if not isinstance(value, str) or len(value) > MAX_REASON_LENGTH or "\x00" in value:
        raise InvalidInput(
            "identity.invalid_reason",
            f"a reason is a string of at most {MAX_REASON_LENGTH} characters",
        )
    return value.strip()

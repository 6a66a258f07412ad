"""Which events a webhook receives: a list of event types and `family.*` patterns.

Pure rules, no I/O. Only known event types and the families they form are accepted (a typo
such as `device.replace` is refused rather than silently matching nothing); `*` means all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from devicetrust.domain.errors import InvalidInput
from devicetrust.domain.events import EventType

ALL = "*"
MAX_FILTERS = 64


def known_families() -> frozenset[str]:
    return frozenset(t.value.split(".", 1)[0] for t in EventType)


def parse_event_filters(event_types: Iterable[str] | None) -> tuple[str, ...]:
    """Validate and canonicalise (sorted, no duplicates); `None` means every event."""
    if event_types is None:
        return (ALL,)
    if isinstance(event_types, str | bytes) or not isinstance(event_types, Iterable):
        raise InvalidInput(
            "webhook.invalid_event_types", "event_types is a list of event types or patterns"
        )
    items = list(event_types)
    if not items:
        # Fail closed: an empty list would subscribe to nothing; say so rather than guess.
        raise InvalidInput(
            "webhook.invalid_event_types",
            "event_types is empty: omit it (or use ['*']) for every event",
        )
    if len(items) > MAX_FILTERS:
        raise InvalidInput(
            "webhook.invalid_event_types", f"at most {MAX_FILTERS} event types or patterns"
        )
    known = {t.value for t in EventType}
    families = known_families()
    clean: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            raise InvalidInput("webhook.invalid_event_types", "each event type is a string")
        is_family = item.endswith(".*") and item[:-2] in families
        if item == ALL or item in known or is_family:
            clean.add(item)
        else:
            raise InvalidInput(
                "webhook.unknown_event_type",
                f"unknown event type or pattern {item[:80]!r}: use one of "
                f"{', '.join(sorted(known))}, a family such as 'device.*', or '*'",
                event_type=item[:80],
            )
    if ALL in clean:
        return (ALL,)
    return tuple(sorted(clean))


def matches(filters: Sequence[str], event_type: str) -> bool:
    """Does an event of `event_type` go to a webhook with these (parsed) filters?"""
    accepted = {ALL, event_type, event_type.split(".", 1)[0] + ".*"}
    return any(item in accepted for item in filters)

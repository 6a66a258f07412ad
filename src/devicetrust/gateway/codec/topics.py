"""Topic names, topic filters, matching and shared subscriptions (MQTT 5.0 section 4.7, 4.8.2).

    topic name    what a PUBLISH is sent to: no wildcard characters, at least one character
    topic filter  what a SUBSCRIBE asks for: `+` alone in its level, `#` alone in the last level
    shared        `$share/{group}/{filter}`: a group name without `/ + #`, then a filter

`matches` never lets a filter starting with a wildcard match a topic starting with `$`
([MQTT-4.7.2-1]): `#` does not receive `$SYS/...`.
"""

from __future__ import annotations

from dataclasses import dataclass

SHARE_PREFIX = "$share/"


@dataclass(frozen=True, slots=True)
class SharedSubscription:
    group: str
    topic_filter: str


def is_valid_topic_name(topic: str) -> bool:
    """A non-empty topic name without `+` or `#` (MQTT 5.0 section 4.7.1, 4.7.3)."""
    return bool(topic) and "+" not in topic and "#" not in topic


def _is_valid_plain_filter(topic_filter: str) -> bool:
    if not topic_filter:
        return False
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != last):
            return False
        if "+" in level and level != "+":
            return False
    return True


def parse_shared(topic_filter: str) -> SharedSubscription | None:
    """The group and inner filter of a `$share/...` filter; None if it is not one.

    Raises ValueError if it starts with `$share/` but is not a well-formed shared
    subscription (MQTT 5.0 section 4.8.2)."""
    if not topic_filter.startswith(SHARE_PREFIX):
        return None
    group, sep, inner = topic_filter[len(SHARE_PREFIX) :].partition("/")
    if not group or any(c in group for c in "+#") or not sep:
        raise ValueError(f"malformed shared subscription {topic_filter!r}")
    if not _is_valid_plain_filter(inner):
        raise ValueError(f"malformed filter in shared subscription {topic_filter!r}")
    return SharedSubscription(group, inner)


def is_valid_topic_filter(topic_filter: str) -> bool:
    """Wildcards well placed (MQTT 5.0 section 4.7.1); `$share/` filters well formed."""
    try:
        if parse_shared(topic_filter) is not None:
            return True
    except ValueError:
        return False
    return _is_valid_plain_filter(topic_filter)


def matches(topic_filter: str, topic: str) -> bool:
    """Whether a message published to `topic` is delivered to a subscription on `topic_filter`.

    A shared filter matches as its inner filter. Both arguments are assumed valid."""
    shared = parse_shared(topic_filter)
    if shared is not None:
        topic_filter = shared.topic_filter
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for i, level in enumerate(filter_levels):
        if level == "#":
            # `a/#` also matches `a` itself: `#` covers the parent level (4.7.1.2).
            return True
        if i >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[i]:
            return False
    return len(filter_levels) == len(topic_levels)

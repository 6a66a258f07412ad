"""Topic names, filters, matching (MQTT 5.0 section 4.7) and shared subscriptions (4.8.2)."""

from __future__ import annotations

import pytest
from hypothesis import given

from devicetrust.gateway.codec import (
    SharedSubscription,
    is_valid_topic_filter,
    is_valid_topic_name,
    matches,
    parse_shared,
)

from .strategies import topic_filters, topic_names

# (filter, topic, matches?) - the non-normative examples of section 4.7.1 and 4.7.2.
MATCHING = [
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/#", "sport", True),
    ("#", "sport/tennis", True),
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("#", "$SYS/broker/load", False),
    ("+/monitor/Clients", "$SYS/monitor/Clients", False),
    ("$SYS/#", "$SYS/broker/load", True),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
    ("devices/+/feedback", "devices/c2c38155/feedback", True),
    ("devices/+/feedback", "devices/c2c38155/telemetry", False),
    ("$share/ingest/devices/+/telemetry", "devices/u1/telemetry", True),
    ("$share/ingest/#", "$SYS/x", False),
    ("a/b", "a/b/c", False),
    ("a/b/c", "a/b", False),
]


@pytest.mark.parametrize(("topic_filter", "topic", "expected"), MATCHING)
def test_matching_follows_the_spec_examples(topic_filter: str, topic: str,
                                            expected: bool) -> None:
    assert matches(topic_filter, topic) is expected


@pytest.mark.parametrize("topic_filter", [
    "#", "+", "a/#", "a/+/b", "+/+", "/", "a//b", "$share/g/#", "$share/g/a/+", "$SYS/#"])
def test_valid_filters(topic_filter: str) -> None:
    assert is_valid_topic_filter(topic_filter)


@pytest.mark.parametrize("topic_filter", [
    "", "a#", "a/#/b", "#/", "a+", "+a/b", "a/b+", "$share/g", "$share//a", "$share/g+/a",
    "$share/g/", "$share/#/a", "$share/g/a#"])
def test_invalid_filters(topic_filter: str) -> None:
    assert not is_valid_topic_filter(topic_filter)


def test_topic_names_have_no_wildcards_and_are_not_empty() -> None:
    assert is_valid_topic_name("devices/c2c38155/diagnostics")
    assert is_valid_topic_name("/")
    assert not is_valid_topic_name("")
    assert not is_valid_topic_name("a/+")
    assert not is_valid_topic_name("a/#")


def test_shared_subscriptions_parse_into_group_and_filter() -> None:
    assert parse_shared("$share/ingest/devices/+/telemetry") == SharedSubscription(
        "ingest", "devices/+/telemetry")
    assert parse_shared("devices/#") is None
    with pytest.raises(ValueError):
        parse_shared("$share/ingest")


@given(topic_names)
def test_a_topic_matches_itself_and_the_catch_all(topic: str) -> None:
    assert matches(topic, topic)
    assert matches("#", topic) is not topic.startswith("$")


@given(topic_filters(), topic_names)
def test_generated_filters_are_valid_and_plus_matches_one_level(topic_filter: str,
                                                                topic: str) -> None:
    assert is_valid_topic_filter(topic_filter)
    levels = topic.split("/")
    assert matches("/".join("+" for _ in levels), topic) is not topic.startswith("$")

"""Event filters of a webhook: what is accepted, and which events match."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devicetrust.domain.errors import InvalidInput
from devicetrust.domain.events import EventType
from devicetrust.events._filters import matches, parse_event_filters

ALL_TYPES = [t.value for t in EventType]


def test_none_means_every_event_and_lists_are_canonical() -> None:
    assert parse_event_filters(None) == ("*",)
    assert parse_event_filters(["device.replaced", "device.*", "device.replaced"]) == (
        "device.*",
        "device.replaced",
    )
    assert parse_event_filters(["device.*", "*"]) == ("*",)


@pytest.mark.parametrize(
    ("given_types", "code"),
    [
        ([], "webhook.invalid_event_types"),
        ("device.replaced", "webhook.invalid_event_types"),
        (["device.replace"], "webhook.unknown_event_type"),
        (["devices.*"], "webhook.unknown_event_type"),
        (["device*"], "webhook.unknown_event_type"),
        (["*.replaced"], "webhook.unknown_event_type"),
        ([""], "webhook.unknown_event_type"),
        ([3], "webhook.invalid_event_types"),
        (["device.*"] * 65, "webhook.invalid_event_types"),
    ],
)
def test_bad_filters_are_refused_with_a_precise_code(given_types: object, code: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_event_filters(given_types)  # type: ignore[arg-type]
    assert err.value.code == code


@pytest.mark.parametrize(
    ("filters", "event_type", "expected"),
    [
        (["*"], "device.replaced", True),
        (["device.*"], "device.replaced", True),
        (["device.*"], "identity.created", False),
        (["device.replaced"], "device.replaced", True),
        (["device.replaced"], "device.bound", False),
        (["logical.*", "device.bound"], "device.bound", True),
    ],
)
def test_matching(filters: list[str], event_type: str, expected: bool) -> None:
    assert matches(parse_event_filters(filters), event_type) is expected


@given(chosen=st.lists(st.sampled_from(ALL_TYPES), min_size=1), event=st.sampled_from(ALL_TYPES))
def test_exact_types_match_exactly_and_families_cover_their_members(
    chosen: list[str], event: str
) -> None:
    assert matches(parse_event_filters(chosen), event) is (event in chosen)
    families = [f"{t.split('.')[0]}.*" for t in chosen]
    assert matches(parse_event_filters(families), event) is (
        event.split(".", maxsplit=1)[0] in {t.split(".")[0] for t in chosen}
    )

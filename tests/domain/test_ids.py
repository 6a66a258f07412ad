"""Physical ids (CSPRNG UUIDv4) and logical names."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devicetrust.domain import InvalidInput, new_physical_id, parse_logical_name, parse_physical_id


def test_physical_ids_are_uuid4_and_unique() -> None:
    ids = {new_physical_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    for pid in list(ids)[:100]:
        parsed = uuid.UUID(pid)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


@pytest.mark.parametrize(
    "value",
    [
        "c2c38155-b0d2-48b6-82fd-22fe3b316224",
        "C2C38155-B0D2-48B6-82FD-22FE3B316224",
        "urn:uuid:c2c38155-b0d2-48b6-82fd-22fe3b316224",
    ],
)
def test_physical_id_canonicalised(value: str) -> None:
    assert parse_physical_id(value) == "c2c38155-b0d2-48b6-82fd-22fe3b316224"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "nope",
        "c2c38155b0d248b682fd22fe3b316224",
        "c2c38155-b0d2-18b6-82fd-22fe3b316224",
        "' OR 1=1 --",
        "c2c38155-b0d2-48b6-82fd-22fe3b316224\x00",
    ],
)
def test_bad_physical_ids_refused(value: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_physical_id(value)
    assert err.value.code == "identity.invalid_physical_id"


@pytest.mark.parametrize(
    "name", ["line-03-left-welding-12", "a", "plant1.line-03.arm-2", "x9", "0-0"]
)
def test_good_names(name: str) -> None:
    assert parse_logical_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Line-03",
        "-line",
        "line-",
        "line..03",
        "line_03",
        "line 03",
        ".line",
        "line.",
        "a" * 129,
        "robot'; DROP TABLE bindings;--",
        "línea",
        "../etc/passwd",
        "line/03",
    ],
)
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_logical_name(name)
    assert err.value.code == "identity.invalid_name"


@given(st.text(max_size=140))
def test_name_validation_is_total(text: str) -> None:
    """Any string is either accepted unchanged or refused with InvalidInput; never crashes."""
    try:
        assert parse_logical_name(text) == text
    except InvalidInput:
        return
    assert set(text) <= set("abcdefghijklmnopqrstuvwxyz0123456789-.")

"""The pure core of measured boot (`attestation.rules`): PCR maps in and out of JSON, PCR
selections, names, which PCRs to quote, and the verdict on a quote against golden
measurements. No database, no TPM, no clock."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devicetrust.attestation import (
    DEFAULT_QUOTE_PCRS,
    BootVerdict,
    judge,
    parse_pcrs,
    parse_selection,
    pcrs_json,
    quote_selection,
)
from devicetrust.attestation.rules import check_name
from devicetrust.domain.errors import InvalidInput
from tests.attestation.conftest import boot, extended, hexed, measurement

HEX = "ab" * 32


def test_parse_pcrs_takes_string_or_int_keys_any_hex_case_and_sorts() -> None:
    parsed = parse_pcrs({"7": HEX.upper(), 0: "00" * 32, " 10 ": HEX})
    assert list(parsed) == [0, 7, 10]
    assert parsed[7] == bytes.fromhex(HEX) and parsed[0] == bytes(32)
    assert pcrs_json(parsed) == {"0": "00" * 32, "7": HEX, "10": HEX}


@pytest.mark.parametrize(
    "raw",
    [
        {},
        [],
        None,
        "0=" + HEX,
        {"24": HEX},
        {"-1": HEX},
        {"x": HEX},
        {"0": HEX[:-2]},
        {"0": HEX + "00"},
        {"0": "zz" * 32},
        {"0": 5},
        {"0": bytes(32)},
        {"0": "0x" + HEX[:-2]},
    ],
    ids=repr,
)
def test_parse_pcrs_refuses_anything_but_a_map_of_sha256_hex(raw: Any) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_pcrs(raw)
    assert refused.value.code == "attestation.invalid_pcrs"


@given(st.dictionaries(st.integers(0, 23), st.binary(min_size=32, max_size=32), min_size=1))
def test_pcrs_json_round_trips(pcrs: dict[int, bytes]) -> None:
    assert parse_pcrs(pcrs_json(pcrs)) == pcrs


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["0-7"], (0, 1, 2, 3, 4, 5, 6, 7)),
        (["7", "0", "3-4", "4"], (0, 3, 4, 7)),
        ([7, 0], (0, 7)),
        (["23"], (23,)),
        ([" 2 - 3 "], (2, 3)),
    ],
)
def test_parse_selection_sorts_and_deduplicates(raw: list[Any], expected: tuple[int, ...]) -> None:
    assert parse_selection(raw) == expected


@pytest.mark.parametrize("raw", [[], ["7-3"], ["24"], ["a"], ["0-"], ["-1"], [""]], ids=repr)
def test_parse_selection_refuses_bad_pieces(raw: list[str]) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_selection(raw)
    assert refused.value.code == "attestation.invalid_pcrs"


@pytest.mark.parametrize("name", ["arm-fw-2.4.1", "ARM_fw:2.4+rc1", "x" * 128, "7"])
def test_check_name_accepts_url_safe_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", " ", " arm", "arm ", "x" * 129, "a\nb", "a\x1b[31m", "arm/fw", "é", "-arm", "a b"],
)
def test_check_name_refuses_other_names(name: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_name(name)
    assert refused.value.code == "attestation.invalid_name"


def test_quote_selection_is_the_union_of_goldens_or_the_boot_pcrs() -> None:
    assert quote_selection([]) == DEFAULT_QUOTE_PCRS == tuple(range(8))
    assert quote_selection([{7: bytes(32)}, {0: bytes(32), 7: bytes(32)}, {14: b""}]) == (0, 7, 14)


def test_a_boot_holding_every_value_of_a_golden_matches_it() -> None:
    verdict = judge(boot(), {"arm-fw-2.4.1": {0: boot()[0], 7: boot()[7]}})
    assert verdict.ok and verdict.verdict is BootVerdict.MATCHED
    assert verdict.golden == "arm-fw-2.4.1"
    assert verdict.detail == "PCRs 0,7 as arm-fw-2.4.1"


def test_a_changed_pcr_is_unknown_and_names_the_nearest_golden_and_the_pcrs() -> None:
    tampered = boot(pcr4=extended(measurement("shim 15.8"), measurement("evil grub")))
    goldens = {
        "arm-fw-2.4.1": {i: boot()[i] for i in (0, 4, 7)},
        "arm-fw-2.3.0": {0: measurement("old uefi"), 4: measurement("x"), 7: boot()[7]},
    }
    verdict = judge(tampered, goldens)
    assert not verdict.ok and verdict.verdict is BootVerdict.UNKNOWN
    assert verdict.golden is None
    assert verdict.detail.endswith("nearest arm-fw-2.4.1 differs in PCR 4")


def test_a_quote_missing_a_pcr_of_the_golden_cannot_match_it() -> None:
    quoted = {0: boot()[0]}
    verdict = judge(quoted, {"full": {0: boot()[0], 7: boot()[7]}})
    assert verdict.verdict is BootVerdict.UNKNOWN
    assert verdict.detail.endswith("nearest full differs in PCR 7")


def test_without_golden_measurements_the_verdict_says_so() -> None:
    verdict = judge(boot(), {})
    assert verdict.verdict is BootVerdict.NO_GOLDEN and not verdict.ok
    assert verdict.golden is None


def test_the_broadest_match_wins_then_the_first_by_name() -> None:
    values = boot()
    goldens = {
        "a-narrow": {7: values[7]},
        "m-broad": {i: values[i] for i in range(8)},
        "z-broad": {i: values[i] for i in range(8)},
        "b-middle": {0: values[0], 7: values[7]},
    }
    assert judge(values, goldens).golden == "m-broad"
    del goldens["m-broad"]
    assert judge(values, goldens).golden == "z-broad"
    assert judge(values, {"a-narrow": {7: values[7]}, "b": {7: values[0]}}).golden == "a-narrow"


def test_values_as_json_judge_like_bytes() -> None:
    assert judge(parse_pcrs(hexed(boot())), {"g": boot()}).ok

"""Measured boot, decided: PCR values in and out of their JSON form, and whether the values a
TPM quote proved match a known-good (golden) measurement. Pure: no I/O, no clock.

A golden measurement names the SHA-256 PCRs it covers and their values; a unit's boot matches
it when every one of those PCRs holds exactly that value in the quote. A quote that covers
fewer PCRs than a golden measurement cannot match it. Among several matches the one covering
the most PCRs wins (then the first by name), so a broad measurement is preferred to a narrow one.
"""

from __future__ import annotations

import enum
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from devicetrust.domain.errors import InvalidInput

PCR_COUNT = 24  # a PC Client TPM has PCRs 0-23 in each bank
DIGEST_BYTES = 32  # SHA-256 bank
DEFAULT_QUOTE_PCRS = (0, 1, 2, 3, 4, 5, 6, 7)  # firmware, option ROMs, boot loader (PC Client)
MAX_NAME = 128

Pcrs = Mapping[int, bytes]


class BootVerdict(enum.StrEnum):
    MATCHED = "matched"  # every PCR of a golden measurement holds its value
    UNKNOWN = "unknown_measurements"  # no active golden measurement matches
    NO_GOLDEN = "no_golden_measurements"  # none is registered: nothing to compare with


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: BootVerdict
    golden: str | None
    detail: str

    @property
    def ok(self) -> bool:
        return self.verdict is BootVerdict.MATCHED


def parse_pcrs(raw: Any, what: str = "pcrs") -> dict[int, bytes]:
    """`{"0": "<64 hex>", ...}` (keys as strings or ints) to `{0: <32 bytes>}`; refuses
    anything else with `attestation.invalid_pcrs`."""
    if not isinstance(raw, Mapping) or not raw:
        raise InvalidInput("attestation.invalid_pcrs", f"{what}: a non-empty map of PCR -> hex")
    parsed: dict[int, bytes] = {}
    for key, value in raw.items():
        index = _index(key, what)
        if not isinstance(value, str) or len(value) != 2 * DIGEST_BYTES:
            raise InvalidInput(
                "attestation.invalid_pcrs", f"{what}: PCR {index} needs 64 hex digits (SHA-256)"
            )
        try:
            parsed[index] = bytes.fromhex(value)
        except ValueError as exc:
            raise InvalidInput(
                "attestation.invalid_pcrs", f"{what}: PCR {index} is not hex"
            ) from exc
    return dict(sorted(parsed.items()))


def pcrs_json(pcrs: Pcrs) -> dict[str, str]:
    return {str(index): pcrs[index].hex() for index in sorted(pcrs)}


def parse_selection(raw: Iterable[Any], what: str = "pcrs") -> tuple[int, ...]:
    """PCR indices (`0,1,7` or `0-7` pieces), sorted and distinct."""
    selected: set[int] = set()
    for piece in raw:
        text = str(piece).strip()
        low, sep, high = text.partition("-")
        if sep:
            first, last = _index(low, what), _index(high, what)
            if first > last:
                raise InvalidInput("attestation.invalid_pcrs", f"{what}: {text} is backwards")
            selected.update(range(first, last + 1))
        else:
            selected.add(_index(text, what))
    if not selected:
        raise InvalidInput("attestation.invalid_pcrs", f"{what}: select at least one PCR")
    return tuple(sorted(selected))


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}")


def check_name(name: str) -> str:
    """A golden measurement's name: 1-128 of letters, digits and `._:+-`, starting with a
    letter or digit (it appears in URLs and audit subjects)."""
    text = str(name)
    if not _NAME.fullmatch(text):
        raise InvalidInput(
            "attestation.invalid_name",
            f"a golden measurement name is 1-{MAX_NAME} letters, digits and ._:+- "
            "(starting with a letter or digit)",
        )
    return text


def quote_selection(goldens: Iterable[Pcrs]) -> tuple[int, ...]:
    """The PCRs to ask a device to quote: every PCR an active golden measurement covers, or
    the PC Client boot PCRs 0-7 when none is registered."""
    union = {index for pcrs in goldens for index in pcrs}
    return tuple(sorted(union)) if union else DEFAULT_QUOTE_PCRS


def judge(quoted: Pcrs, goldens: Mapping[str, Pcrs]) -> Judgement:
    """Whether the quoted PCR values match an active golden measurement (see module doc)."""
    if not goldens:
        return Judgement(BootVerdict.NO_GOLDEN, None, "no golden measurement is registered")
    matches = [
        name
        for name, golden in goldens.items()
        if all(i in quoted and hmac.compare_digest(quoted[i], v) for i, v in golden.items())
    ]
    if matches:
        best = min(matches, key=lambda name: (-len(goldens[name]), name))
        return Judgement(BootVerdict.MATCHED, best, f"PCRs {_list(goldens[best])} as {best}")
    nearest = min(goldens, key=lambda name: (len(_differing(quoted, goldens[name])), name))
    differing = _differing(quoted, goldens[nearest])
    return Judgement(
        BootVerdict.UNKNOWN,
        None,
        f"no golden measurement matches; nearest {nearest} differs in PCR {_list(differing)}",
    )


def _differing(quoted: Pcrs, golden: Pcrs) -> list[int]:
    return [i for i, v in golden.items() if i not in quoted or quoted[i] != v]


def _list(indices: Iterable[int]) -> str:
    return ",".join(str(i) for i in sorted(indices))


def _index(raw: Any, what: str) -> int:
    text = str(raw).strip()
    if not text.isdigit() or not 0 <= int(text) < PCR_COUNT:
        raise InvalidInput(
            "attestation.invalid_pcrs", f"{what}: PCR index {text[:8]!r} is not 0-{PCR_COUNT - 1}"
        )
    return int(text)

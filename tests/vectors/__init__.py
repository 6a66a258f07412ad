"""Test vectors from independent suites, kept in the repository so the tests that use them
run on a fresh clone (data only; see README.md for sources and licences)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).parent


def wycheproof(name: str) -> dict[str, Any]:
    """One C2SP/wycheproof `testvectors_v1` file, e.g. `"hkdf_sha256_test.json"`."""
    data: dict[str, Any] = json.loads((VECTORS / "wycheproof" / name).read_text())
    return data


def wycheproof_cases(name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(group, test) of every test of a Wycheproof file."""
    return [(group, test) for group in wycheproof(name)["testGroups"] for test in group["tests"]]

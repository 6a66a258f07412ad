"""Bad input: a clear `error: ... [code]` on stderr, a non-zero exit, and an unchanged database."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.cli.conftest import Cli

UNKNOWN_ID = "c2c38155-b0d2-48b6-82fd-22fe3b316224"


@pytest.fixture(scope="module")
def template(
    tmp_path_factory: pytest.TempPathFactory, make_cli: Callable[[Path], Cli]
) -> tuple[Path, dict[str, str]]:
    """Built once per module (each CLI call is a process start): `held` holds line-01-a and
    is active; `spare` is a manufactured, free unit."""
    workdir = tmp_path_factory.mktemp("template")
    cli = make_cli(workdir)

    def register() -> str:
        return str(cli.json("factory", "register", "--model", "RA-7")["physical_id"])

    held, spare = register(), register()
    cli.ok("identity", "create", "line-01-a", "--site", "plant-a", "--tag", "left")
    cli.ok("identity", "bind", "line-01-a", held)
    cli.ok("device", "state", held, "active")
    return cli.data_dir, {"held": held, "spare": spare}


@pytest.fixture
def populated(cli: Cli, template: tuple[Path, dict[str, str]]) -> dict[str, str]:
    data_dir, ids = template
    shutil.copytree(data_dir, cli.data_dir)
    return ids


CASES: list[tuple[str, list[str], int, str]] = [
    ("bad name", ["identity", "create", "Line_01!"], 2, "identity.invalid_name"),
    ("name with a double dot", ["identity", "create", "a..b"], 2, "identity.invalid_name"),
    ("duplicate name", ["identity", "create", "line-01-a"], 5, "identity.name_taken"),
    ("unknown identity", ["identity", "show", "line-99-z"], 4, "identity.logical_not_found"),
    ("unknown unit", ["device", "show", UNKNOWN_ID], 4, "identity.physical_not_found"),
    ("not a uuid", ["device", "show", "robot-1"], 2, "identity.invalid_physical_id"),
    ("double binding", ["identity", "bind", "line-01-a", "{spare}"], 5, "identity.already_bound"),
    (
        "invalid transition",
        ["device", "state", "{spare}", "active"],
        5,
        "lifecycle.invalid_transition",
    ),
    ("release of a live unit", ["device", "release", "{held}"], 5, "lifecycle.not_quarantined"),
    (
        "replace with itself",
        ["identity", "replace", "line-01-a", "{held}"],
        2,
        "identity.replace_same_unit",
    ),
    (
        "replace of a stale holder",
        ["identity", "replace", "line-01-a", "{spare}", "--old", UNKNOWN_ID],
        5,
        "identity.replacement_conflict",
    ),
    ("bad time", ["identity", "history", "line-01-a", "--at", "yesterday"], 2, "cli.invalid_time"),
    ("unknown api key", ["apikey", "revoke", "0123456789ab"], 4, "auth.key_not_found"),
    # Refused by the command line parser itself (a usage error, exit 2).
    ("bad scope", ["apikey", "create", "k", "--scope", "root"], 2, ""),
    ("bad state", ["device", "state", "{held}", "broken"], 2, ""),
]


@pytest.mark.parametrize(
    ("args", "exit_code", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_refused_and_changes_nothing(
    cli: Cli, populated: dict[str, str], args: list[str], exit_code: int, code: str
) -> None:
    before = cli.dump()
    done = cli(*(arg.format(**populated) for arg in args))
    assert done.returncode == exit_code, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    if code:
        assert done.stderr.startswith("error: ")
        assert f"[{code}]" in done.stderr
    assert cli.dump() == before


def test_unit_already_holding_an_identity_is_refused(cli: Cli, populated: dict[str, str]) -> None:
    cli.ok("identity", "create", "line-01-b")
    before = cli.dump()
    done = cli("identity", "bind", "line-01-b", populated["held"])
    assert done.returncode == 5
    assert "[identity.unit_already_bound]" in done.stderr
    assert cli.dump() == before

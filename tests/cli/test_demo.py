"""`devicetrust demo` in an empty folder, run once and again, then read back through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from devicetrust.vault import generate_kek_text

if TYPE_CHECKING:
    from tests.cli.conftest import Cli

NAME = "line-03-left-welding-12"


def _history(cli: Cli) -> list[dict[str, object]]:
    done = cli.script("identity", "history", NAME, "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    bindings = document["bindings"]
    assert isinstance(bindings, list)
    return bindings


def _assert_contiguous_oldest_first(bindings: list[dict[str, object]]) -> None:
    starts = [datetime.fromisoformat(str(b["started_at"])) for b in bindings]
    assert starts == sorted(starts)
    for earlier, later in pairwise(bindings):
        assert earlier["ended_at"] == later["started_at"]
    assert bindings[-1]["ended_at"] is None
    assert len({b["physical_id"] for b in bindings}) == len(bindings)


def test_demo_in_an_empty_folder_then_again(cli: Cli) -> None:
    first = cli.script("demo")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "VALID" in first.stdout

    bindings = _history(cli)
    assert len(bindings) == 2
    _assert_contiguous_oldest_first(bindings)
    old, new = bindings
    old_unit = cli.json("device", "show", str(old["physical_id"]))
    assert old_unit["state"] == "decommissioned"
    assert old_unit["logical_name"] is None
    new_unit = cli.json("device", "show", str(new["physical_id"]))
    assert new_unit["state"] == "active"
    assert new_unit["logical_name"] == NAME

    # The demo webhook is gone, so nothing is left to dead-letter later. (Listing needs a
    # KEK, any KEK: the demo's own was in memory only.)
    listed = cli.json("webhook", "list", DEVICETRUST_KEK=generate_kek_text())
    assert listed["webhooks"] == []

    second = cli.script("demo")
    assert second.returncode == 0, second.stdout + second.stderr
    bindings = _history(cli)
    assert len(bindings) == 3
    _assert_contiguous_oldest_first(bindings)
    assert bindings[1]["physical_id"] == new["physical_id"]  # the holder was the one replaced

    assert sorted(p.name for p in cli.data_dir.glob("*.db")) == ["devicetrust.db"]
    verified = cli.script("audit", "verify")
    assert verified.returncode == 0, verified.stderr


@pytest.fixture(scope="module")
def after_demo(tmp_path_factory: pytest.TempPathFactory, make_cli: Callable[[Path], Cli]) -> Cli:
    """One demo run, shared by the tests that only read what it left."""
    cli = make_cli(tmp_path_factory.mktemp("demo"))
    cli.ok("demo")
    return cli


def test_demo_writes_no_key_to_disk(after_demo: Cli) -> None:
    cli = after_demo
    names = {p.name for p in cli.cwd.rglob("*") if p.is_file()}
    assert names <= {"devicetrust.db", "devicetrust.db-wal", "devicetrust.db-shm"}


def test_history_at_a_time_names_the_holder_then(after_demo: Cli) -> None:
    cli = after_demo
    old, new = _history(cli)
    at_old = cli.json("identity", "history", NAME, "--at", str(old["started_at"]))
    assert [b["physical_id"] for b in at_old["bindings"]] == [old["physical_id"]]
    at_new = cli.json("identity", "history", NAME, "--at", str(new["started_at"]))
    assert [b["physical_id"] for b in at_new["bindings"]] == [new["physical_id"]]
    before = cli.json("identity", "history", NAME, "--at", "2000-01-01T00:00:00Z")
    assert before["bindings"] == []

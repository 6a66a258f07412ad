"""`devicetrust audit verify`: exit 0 when intact; non-zero naming the first broken entry."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.cli.conftest import Cli

EXIT_CHAIN_BROKEN = 7


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, make_cli: Callable[[Path], Cli]) -> Path:
    """A data directory with some history, built once (each CLI call is a process start)."""
    cli = make_cli(tmp_path_factory.mktemp("audit-template"))
    old, new = (
        str(cli.json("factory", "register", "--model", "RA-7")["physical_id"]) for _ in range(2)
    )
    cli.ok("identity", "create", "line-02-b", "--role", "welding")
    cli.ok("identity", "bind", "line-02-b", old)
    cli.ok("identity", "replace", "line-02-b", new, "--reason", "malfunction")
    return cli.data_dir


@pytest.fixture
def history(cli: Cli, template: Path) -> Cli:
    shutil.copytree(template, cli.data_dir)
    return cli


def test_verify_passes_then_names_the_edited_entry(history: Cli) -> None:
    cli = history
    intact = cli.json("audit", "verify")
    assert intact["ok"] is True
    assert intact["count"] == intact["head_seq"] >= 5
    assert len(intact["head_hash"]) == 64
    assert cli("audit", "verify").returncode == 0

    with sqlite3.connect(cli.db_path) as conn:
        conn.execute(
            "UPDATE audit_log SET details = ? WHERE seq = 3",
            (json.dumps({"physical_id": "someone-else"}),),
        )

    broken = cli("audit", "verify")
    assert broken.returncode == EXIT_CHAIN_BROKEN
    assert "entry 3" in broken.stderr
    assert "[audit.chain_broken]" in broken.stderr
    report = json.loads(cli("audit", "verify", "--json").stdout)
    assert report["ok"] is False
    assert report["first_break"]["seq"] == 3
    assert report["count"] == 2


def test_verify_names_a_deleted_entry(history: Cli) -> None:
    cli = history
    with sqlite3.connect(cli.db_path) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq = 2")
    broken = cli("audit", "verify")
    assert broken.returncode == EXIT_CHAIN_BROKEN
    assert "entry 2" in broken.stderr


def test_list_shows_the_cli_actor(history: Cli) -> None:
    cli = history
    entries = cli.json("audit", "list", "--subject", "line-02-b")["entries"]
    assert [e["action"] for e in entries] == [
        "logical.created",
        "device.bound",
        "device.replaced",
    ]
    assert all(e["actor"].startswith("cli:") for e in entries)
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)

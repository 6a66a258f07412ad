"""`--help` works on every command and shows a description and a copy-paste example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import typer.main
from typer.testing import CliRunner

from devicetrust.cli.main import app

if TYPE_CHECKING:
    from tests.cli.conftest import Cli


def _command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        paths.extend(_command_paths(sub, (*prefix, name)))
    return paths


ALL_COMMANDS = _command_paths(typer.main.get_command(app))


def _leaves() -> list[tuple[str, ...]]:
    root = typer.main.get_command(app)
    leaves = []
    for path in ALL_COMMANDS:
        command: Any = root
        for name in path:
            command = command.commands[name]
        if not hasattr(command, "commands"):
            leaves.append(path)
    return leaves


def test_the_command_tree_is_complete() -> None:
    expected = {
        ("init",),
        ("serve",),
        ("demo",),
        ("factory", "register"),
        *(
            ("identity", c)
            for c in (
                "create",
                "update",
                "list",
                "show",
                "bind",
                "unbind",
                "rename",
                "transfer",
                "replace",
                "history",
            )
        ),
        *(("device", c) for c in ("show", "list", "state", "release", "history")),
        ("audit", "verify"),
        ("audit", "list"),
        *(("webhook", c) for c in ("add", "list", "remove")),
        *(("apikey", c) for c in ("create", "list", "revoke")),
        *(("policy", c) for c in ("show", "set", "relax", "relaxations", "revoke-relaxation")),
        ("posture",),
        ("credential", "verify"),
        *(("credential", "token-key", c) for c in ("rotate", "adopt", "list", "revoke")),
        *(("credential", "public-key", c) for c in ("register", "list", "revoke")),
        ("gateway", "mosquitto-config"),
        ("ingest",),
        *(("data", c) for c in ("diagnostics", "telemetry")),
        *(("feedback", c) for c in ("send", "status", "list")),
    }
    assert expected <= set(_leaves())


def test_every_command_has_help_with_an_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In-process (one interpreter start per command would cost a minute); the subprocess
    # tests drive the same app through the real entry point.
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for path in ALL_COMMANDS:
        done = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
        assert done.exit_code == 0, (path, done.output)
        assert "Usage" in done.output, path
        assert "Example:" in done.output, path
    # --help never creates a data directory or database.
    assert list(tmp_path.iterdir()) == []


def test_examples_fit_a_terminal_so_they_can_be_pasted() -> None:
    root: Any = typer.main.get_command(app)
    for path in ALL_COMMANDS:
        command = root
        for name in path:
            command = command.commands[name]
        assert command.help, path
        lines = [line for line in command.epilog.split("\n") if line]
        assert lines[0] == "Example:", path
        assert all(len(line) <= 78 for line in lines), path
        assert any(line.startswith(("devicetrust ", "mkdir ")) for line in lines[1:]), path


def test_python_dash_m_devicetrust(cli: Cli) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devicetrust", "--help"],
        cwd=cli.cwd,
        env=cli.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "identity" in done.stdout

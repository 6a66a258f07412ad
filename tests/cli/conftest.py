"""Drive the real `devicetrust` command as a subprocess, in a fresh working directory.

Each test gets an empty folder as its cwd (so the default data directory `./.devicetrust`
lands there) and an environment without any `DEVICETRUST_*` variable of the machine.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devicetrust.vault import generate_kek_text
from tests.conftest import free_port

COMMAND_TIMEOUT = 120


@dataclass
class Cli:
    cwd: Path
    env: dict[str, str]

    def __call__(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return self.run([sys.executable, "-m", "devicetrust.cli.main", *args], **extra_env)

    def script(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        """Through the installed `devicetrust` console script, exactly as a user types it."""
        script = Path(sys.executable).with_name("devicetrust")
        assert script.exists(), "the package is not installed (pip install -e .)"
        return self.run([str(script), *args], **extra_env)

    def run(self, argv: list[str], **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            cwd=self.cwd,
            env={**self.env, **extra_env},
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )

    def ok(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        done = self(*args, **extra_env)
        assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stderr}"
        return done

    def json(self, *args: str, **extra_env: str) -> Any:
        return json.loads(self.ok(*args, "--json", **extra_env).stdout)

    @property
    def data_dir(self) -> Path:
        return self.cwd / ".devicetrust"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "devicetrust.db"

    def dump(self) -> list[str]:
        """The whole database as SQL: equal dumps mean nothing changed."""
        with sqlite3.connect(self.db_path) as conn:
            return list(conn.iterdump())


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVICETRUST_")}
    env["COLUMNS"] = "200"
    # `serve` starts the MQTT gateway once a CA exists: never on the fixed port 8883.
    env["DEVICETRUST_GATEWAY_PORT"] = str(free_port())
    # The CLI must work without a proxy for loopback (the demo's receiver).
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(proxy, None)
    return env


@pytest.fixture(scope="session")
def make_cli() -> Callable[[Path], Cli]:
    """A CLI working in the given (existing) folder."""

    def make(workdir: Path) -> Cli:
        return Cli(cwd=workdir, env=clean_env())

    return make


@pytest.fixture
def cli(tmp_path: Path, make_cli: Callable[[Path], Cli]) -> Cli:
    workdir = tmp_path / "work"
    workdir.mkdir()
    return make_cli(workdir)


@pytest.fixture
def kek_cli(cli: Cli) -> Cli:
    """A CLI with a key-encryption key configured (webhooks need one)."""
    cli.env["DEVICETRUST_KEK"] = generate_kek_text()
    return cli

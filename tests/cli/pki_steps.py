"""Steps shared by the CLI tests of the CA: the documented set-up, and external tools (openssl,
curl) run in the CLI's folder as a user would run them."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from tests.pki.certs import openssl_bin

if TYPE_CHECKING:
    from tests.cli.conftest import Cli


def run(cli: Cli, *args: str) -> subprocess.CompletedProcess[str]:
    """An external tool (openssl, curl) in the CLI's folder, as a user would run it."""
    tool = openssl_bin() if args[0] == "openssl" else args[0]
    return subprocess.run(
        [tool, *args[1:]],
        check=False,
        cwd=cli.cwd,
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def ok(cli: Cli, *args: str) -> str:
    done = cli.script(*args)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


def initialise(cli: Cli) -> None:
    """`devicetrust init`, then the printed KEK goes into the environment, as it says."""
    printed = ok(cli, "init")
    found = re.search(r"export DEVICETRUST_KEK=(\S+)", printed)
    assert found, printed
    cli.env["DEVICETRUST_KEK"] = found.group(1)


def device_csr(cli: Cli, name: str, subject: str) -> Path:
    made = run(cli, "openssl", "ecparam", "-genkey", "-name", "prime256v1", "-out", f"{name}.key")
    assert made.returncode == 0, made.stderr
    made = run(
        cli,
        "openssl",
        "req",
        "-new",
        "-key",
        f"{name}.key",
        "-subj",
        subject,
        "-out",
        f"{name}.csr",
    )
    assert made.returncode == 0, made.stderr
    return cli.cwd / f"{name}.csr"


def register(cli: Cli) -> str:
    """`devicetrust factory register --json` -> the new unit's physical id."""
    return str(json.loads(ok(cli, "factory", "register", "--json"))["physical_id"])

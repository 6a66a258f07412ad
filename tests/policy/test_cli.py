"""`devicetrust policy ...` and `devicetrust posture` on a SQLite data directory: in-process
through the real Typer app for the flows, and through the real entry point (a subprocess)
for refusals, whose exit status and `error: ... [code]` line a script relies on."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from devicetrust.cli.main import app
from devicetrust.vault import generate_kek_text


class Cli:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DEVICETRUST_")} | {
            "DEVICETRUST_DATA_DIR": str(workdir / "data"),
            "DEVICETRUST_KEK": generate_kek_text(),
            "COLUMNS": "200",
        }

    def json(self, *args: str) -> Any:
        done = CliRunner().invoke(app, [*args, "--json"], env=self.env, catch_exceptions=False)
        assert done.exit_code == 0, done.output
        return json.loads(done.stdout)

    def ok(self, *args: str) -> None:
        done = CliRunner().invoke(app, list(args), env=self.env, catch_exceptions=False)
        assert done.exit_code == 0, done.output

    def refused(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "devicetrust.cli.main", *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode != 0, done.stdout
        assert done.stdout == ""
        return done

    def dump(self) -> list[str]:
        with sqlite3.connect(self.workdir / "data" / "devicetrust.db") as conn:
            return list(conn.iterdump())


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def test_set_show_relax_list_revoke_and_posture(cli: Cli) -> None:
    unit = cli.json("factory", "register", "--model", "arm-r7", "--serial", "ctl=C-1")
    pid = (unit[0] if isinstance(unit, list) else unit)["physical_id"]
    shown = cli.json("policy", "set", "max_certificate_lifetime=12h", "auth_methods=mtls")
    assert shown["settings"] == {"auth_methods": ["mtls"], "max_certificate_lifetime": 43200}
    assert shown["effective"]["sources"]["max_certificate_lifetime"] == "fleet"
    device = cli.json("policy", "set", "--scope", f"device:{pid}", "allowed_networks=10.3.0.0/16")
    assert device["effective"]["policy"]["allowed_networks"] == ["10.3.0.0/16"]

    relaxed = cli.json(
        "policy",
        "relax",
        "--rule",
        "min_tls_version",
        "--value",
        "1.2",
        "--scope",
        f"device:{pid}",
        "--expires",
        "7d",
        "--reason",
        "old TLS stack on this unit",
    )
    assert relaxed["status"] == "active" and relaxed["created_by"].startswith("cli:")
    effective = cli.json("policy", "show", "--device", pid)
    assert effective["policy"]["min_tls_version"] == "1.2"
    assert effective["strict"]["min_tls_version"] == "1.3"
    assert effective["sources"]["min_tls_version"] == f"relaxation:{relaxed['relaxation_id']}"
    listed = cli.json("policy", "relaxations")
    assert [r["relaxation_id"] for r in listed] == [relaxed["relaxation_id"]]

    posture = cli.json("posture")
    assert posture["units"] == 1
    assert [r["relaxation_id"] for r in posture["relaxations"]] == [relaxed["relaxation_id"]]
    one = cli.json("posture", "--device", pid)
    assert one["physical_id"] == pid
    assert {m["measure"]: m["status"] for m in one["measures"]}["attestation"] == ("not_applicable")
    assert [r["ref"] for r in one["etsi_en_303_645"]][:2] == ["5.1", "5.2"]

    revoked = cli.json(
        "policy", "revoke-relaxation", relaxed["relaxation_id"], "--reason", "stack updated"
    )
    assert revoked["status"] == "revoked"
    assert cli.json("policy", "relaxations") == []
    assert [r["status"] for r in cli.json("policy", "relaxations", "--all")] == ["revoked"]
    # the readable tables render too
    for args in (
        ("posture",),
        ("posture", "--device", pid),
        ("policy", "show"),
        ("policy", "relaxations", "--all"),
    ):
        cli.ok(*args)


def test_refusals_exit_non_zero_with_the_code_and_change_nothing(cli: Cli) -> None:
    cli.json("policy", "set", "clock_skew=1m")
    before = cli.dump()
    cases = [
        (("policy", "set", "min_tls_version=1.2"), 5, "policy.weakens"),
        (("policy", "set", "hardware_key_required=false"), 5, "policy.weakens"),
        (("policy", "set", "max_certificate_lifetime"), 2, "cli.invalid_assignment"),
        (("policy", "set", "colour=blue"), 2, "policy.unknown_field"),
        (
            ("policy", "relax", "--rule", "min_tls_version", "--value", "1.2", "--expires", "7d"),
            2,
            "policy.reason_required",
        ),
        (
            (
                "policy",
                "relax",
                "--rule",
                "min_tls_version",
                "--value",
                "1.2",
                "--reason",
                "legacy PLC firmware",
            ),
            2,
            "policy.expiry_required",
        ),
        (
            (
                "policy",
                "relax",
                "--rule",
                "min_tls_version",
                "--value",
                "1.2",
                "--expires",
                "120d",
                "--reason",
                "legacy PLC firmware",
            ),
            2,
            "policy.expiry_too_far",
        ),
        (
            (
                "policy",
                "relax",
                "--rule",
                "min_tls_version",
                "--value",
                "1.3",
                "--expires",
                "7d",
                "--reason",
                "legacy PLC firmware",
            ),
            2,
            "policy.not_a_relaxation",
        ),
        (("policy", "show", "--scope", "enrollment:nope"), 4, "policy.unknown_enrollment"),
        (
            (
                "policy",
                "revoke-relaxation",
                "5d7e0c0e-0000-4000-8000-000000000000",
                "--reason",
                "not there at all",
            ),
            4,
            "policy.relaxation_not_found",
        ),
        (("posture", "--device", "not-a-uuid"), 2, "identity.invalid_physical_id"),
    ]
    for args, status, code in cases:
        done = cli.refused(*args)
        assert done.returncode == status, (args, done.stderr)
        assert done.stderr.startswith("error: ") and done.stderr.rstrip().endswith(f"[{code}]")
    assert cli.dump() == before

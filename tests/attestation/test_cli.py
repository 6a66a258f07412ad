"""`devicetrust attestation ...` on a SQLite data directory: golden measurements from `--pcr`
values, from REAL `tpm2_pcrread` output of a swtpm whose PCRs were extended like a boot
(in-process through the real Typer app), from a reference unit; the boot attestations of a
unit; and refusals through the real entry point (a subprocess), whose exit status and
`error: ... [code]` line a script relies on, changing nothing."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from devicetrust.attestation import AttestationService
from devicetrust.cli.main import app, main
from devicetrust.device.tpm import Swtpm
from devicetrust.domain.clock import SystemClock
from devicetrust.store.database import Database, sqlite_url
from devicetrust.vault import generate_kek_text
from tests.attestation.conftest import boot, hexed, measurement
from tests.conftest import require_service

REASON = "boot loader CVE, fixed in 2.4.2"


class Cli:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DEVICETRUST_")} | {
            "DEVICETRUST_DATA_DIR": str(workdir / "data"),
            "DEVICETRUST_KEK": generate_kek_text(),
            "COLUMNS": "200",
        }

    def json(self, *args: str, stdin: str | None = None) -> Any:
        done = CliRunner().invoke(
            app, [*args, "--json"], input=stdin, env=self.env, catch_exceptions=False
        )
        assert done.exit_code == 0, done.output
        return json.loads(done.stdout)

    def ok(self, *args: str) -> str:
        done = CliRunner().invoke(app, list(args), env=self.env, catch_exceptions=False)
        assert done.exit_code == 0, done.output
        return done.output

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

    def refused_in_process(self, *args: str) -> tuple[int, str]:
        """The entry point's error boundary without a process per case: exit status, stderr."""
        stderr = io.StringIO()
        with pytest.MonkeyPatch.context() as patch:
            for name, value in self.env.items():
                patch.setenv(name, value)
            patch.setattr(sys, "stderr", stderr)
            with pytest.raises(SystemExit) as exited:
                main(list(args))
        assert isinstance(exited.value.code, int)
        return exited.value.code, stderr.getvalue()

    def unit(self) -> str:
        registered = self.json("factory", "register", "--model", "arm-r7", "--serial", "c=C-1")
        physical_id: str = (registered[0] if isinstance(registered, list) else registered)[
            "physical_id"
        ]
        return physical_id

    @contextmanager
    def device_side(self) -> Iterator[AttestationService]:
        """The service provisioning's TPM method records verified quotes with."""
        db = Database(sqlite_url(self.workdir / "data" / "devicetrust.db"))
        try:
            yield AttestationService(db, SystemClock())
        finally:
            db.dispose()

    def dump(self) -> list[str]:
        with sqlite3.connect(self.workdir / "data" / "devicetrust.db") as conn:
            return list(conn.iterdump())


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


class Tools:
    """tpm2-tools against one swtpm."""

    def __init__(self, tpm: Swtpm) -> None:
        self.tcti = tpm.tcti

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [args[0], "-T", self.tcti, *args[1:]],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    def boot(self) -> None:
        """Extend PCRs as `conftest.boot()` computes them: firmware, boot loader, secure boot."""
        for index, labels in [
            (0, ["uefi 2.4.1"]),
            (4, ["shim 15.8", "grub 2.12"]),
            (7, ["secure boot on", "db: vendor ca"]),
        ]:
            for label in labels:
                self.run("tpm2_pcrextend", f"{index}:sha256={measurement(label).hex()}")


@pytest.fixture
def tools(tmp_path: Path) -> Iterator[Tools]:
    for tool in ("swtpm", "tpm2_pcrread", "tpm2_pcrextend"):
        if shutil.which(tool) is None:
            require_service("swtpm and tpm2-tools", f"{tool} not on PATH")
    tpm = Swtpm(tmp_path / "tpm")
    try:
        yield Tools(tpm)
    finally:
        tpm.stop()


def test_golden_measurements_from_real_tpm2_pcrread_output(
    cli: Cli, tools: Tools, tmp_path: Path
) -> None:
    tools.boot()
    boot_pcrs = tmp_path / "fw-2.4.1.pcrs"
    boot_pcrs.write_text(tools.run("tpm2_pcrread", "sha256:0,1,2,3,4,5,6,7"))
    added = cli.json(
        "attestation", "golden", "add", "arm-fw-2.4.1", "--from-file", str(boot_pcrs),
        "--note", "controller firmware 2.4.1",
    )  # fmt: skip
    # the values the TPM holds are the values a boot extending those digests produces
    assert added["pcrs"] == hexed(boot())
    assert added["active"] is True and added["created_by"].startswith("cli:")

    everything = tmp_path / "all-banks.pcrs"  # sha1 and sha256 banks, PCRs 0-23
    everything.write_text(tools.run("tpm2_pcrread"))
    selected = cli.json(
        "attestation", "golden", "add", "all-banks", "--from-file", str(everything),
        "--select", "0-7",
    )  # fmt: skip
    assert selected["pcrs"] == hexed(boot())
    piped = cli.json(
        "attestation", "golden", "add", "secure-boot", "--from-file", "-",
        stdin=tools.run("tpm2_pcrread", "sha1:7+sha256:0,7"),
    )  # fmt: skip
    assert piped["pcrs"] == {"0": boot()[0].hex(), "7": boot()[7].hex()}
    listed = cli.json("attestation", "golden", "list")
    assert [g["name"] for g in listed] == ["all-banks", "arm-fw-2.4.1", "secure-boot"]

    # a unit whose verified quote proved the same values matches the broadest golden; with
    # another boot loader (PCR 4) only the narrow secure-boot one, until it is revoked
    pid = cli.unit()
    tools.run("tpm2_pcrextend", f"4:sha256={measurement('unsigned grub').hex()}")
    tampered = {**boot(), 4: bytes.fromhex(tools.run("tpm2_pcrread", "sha256:4").split("0x")[1])}
    with cli.device_side() as device:
        device.record(pid, boot(), source="provisioning")
        device.record(pid, tampered, source="provisioning")
    cli.json("attestation", "golden", "revoke", "secure-boot", "--reason", "too narrow")
    with cli.device_side() as device:
        device.record(pid, tampered, source="provisioning")
    shown = cli.json("attestation", "show", pid)
    assert [(a["verdict"], a["golden"]) for a in shown] == [
        ("unknown_measurements", None),
        ("matched", "secure-boot"),
        ("matched", "all-banks"),  # as broad as arm-fw-2.4.1, first by name
    ]
    assert shown[0]["detail"].endswith("differs in PCR 4")
    assert "unknown" in cli.ok("attestation", "show", pid)  # the table may wrap the word
    assert "arm-fw-2.4.1" in cli.ok("attestation", "golden", "list")


def test_add_list_revoke_show_and_a_golden_from_a_reference_unit(cli: Cli) -> None:
    added = cli.json(
        "attestation", "golden", "add", "bench-rig",
        "--pcr", f"0={boot()[0].hex()}", "--pcr", f"7=0x{boot()[7].hex().upper()}",
    )  # fmt: skip
    assert added["pcrs"] == {"0": boot()[0].hex(), "7": boot()[7].hex()}
    as_json = json.dumps({"sha256": {"4": boot()[4].hex().upper()}})
    json_map = cli.json(
        "attestation", "golden", "add", "json-map", "--from-file", "-", stdin=as_json
    )
    assert json_map["pcrs"] == {"4": boot()[4].hex()}
    pid = cli.unit()
    assert cli.json("attestation", "show", pid) == []
    assert "has not attested" in cli.ok("attestation", "show", pid)
    updated = boot(pcr0=measurement("uefi 2.4.2"))
    with cli.device_side() as device:
        device.record(pid, updated, source="provisioning")
    from_unit = cli.json("attestation", "golden", "add", "arm-fw-2.4.2", "--from-unit", pid)
    assert from_unit["pcrs"] == hexed(updated) and pid in from_unit["note"]

    revoked = cli.json("attestation", "golden", "revoke", "bench-rig", "--reason", REASON)
    assert revoked["active"] is False and revoked["revoke_reason"] == REASON
    assert revoked["revoked_by"].startswith("cli:")
    listed = cli.json("attestation", "golden", "list")
    assert [g["name"] for g in listed] == ["arm-fw-2.4.2", "json-map"]
    everything = cli.json("attestation", "golden", "list", "--all")
    assert [(g["name"], g["active"]) for g in everything] == [
        ("arm-fw-2.4.2", True),
        ("bench-rig", False),
        ("json-map", True),
    ]
    shown = cli.json("attestation", "show", pid, "--limit", "1")
    assert len(shown) == 1 and shown[0]["pcrs"] == hexed(updated)
    for args in (
        ("attestation", "golden", "list", "--all"),
        ("attestation", "show", pid),
        ("attestation", "golden", "revoke", "arm-fw-2.4.2", "--reason", REASON),
    ):
        cli.ok(*args)


def test_refusals_exit_non_zero_with_the_code_and_change_nothing(cli: Cli, tmp_path: Path) -> None:
    pid = cli.unit()
    cli.json("attestation", "golden", "add", "g", "--pcr", f"7={boot()[7].hex()}")
    cli.json("attestation", "golden", "add", "old", "--pcr", f"7={boot()[0].hex()}")
    cli.json("attestation", "golden", "revoke", "old", "--reason", REASON)
    not_pcrs = tmp_path / "not-pcrs.txt"
    not_pcrs.write_text("hello world\n")
    sha1_only = tmp_path / "sha1.pcrs"
    sha1_only.write_text("  sha1:\n    0 : 0x" + "00" * 20 + "\n")
    huge = tmp_path / "huge.pcrs"
    huge.write_text("# padding\n" * 8000)
    before = cli.dump()
    seven = f"7={boot()[7].hex()}"
    cases = [
        (("golden", "add", "g", "--pcr", seven), 5, "attestation.golden_exists"),
        (("golden", "add", "h", "--pcr", "7=abc"), 2, "attestation.invalid_pcrs"),
        (("golden", "add", "h", "--pcr", "24=" + "00" * 32), 2, "attestation.invalid_pcrs"),
        (("golden", "add", "h", "--pcr", "7"), 2, "attestation.invalid_pcrs"),
        (("golden", "add", "h"), 2, "attestation.invalid_pcrs"),
        (("golden", "add", "h", "--pcr", seven, "--select", "0-7"), 2, "attestation.invalid_pcrs"),
        (("golden", "add", "h", "--from-file", str(tmp_path / "nope")), 2, "cli.file_unreadable"),
        (("golden", "add", "h", "--from-file", str(not_pcrs)), 2, "attestation.invalid_pcr_file"),
        (("golden", "add", "h", "--from-file", str(sha1_only)), 2, "attestation.invalid_pcr_file"),
        (("golden", "add", "h", "--from-file", str(huge)), 2, "cli.file_too_large"),
        (("golden", "add", " h", "--pcr", seven), 2, "attestation.invalid_name"),
        (("golden", "add", "h", "--from-unit", pid), 4, "attestation.no_attestation"),
        (("golden", "add", "h", "--from-unit", pid, "--pcr", seven), 2, "cli.conflicting_options"),
        (("golden", "revoke", "old", "--reason", REASON), 5, "attestation.golden_revoked"),
        (("golden", "revoke", "nope", "--reason", REASON), 4, "attestation.golden_not_found"),
        (("golden", "revoke", "g"), 2, "attestation.reason_required"),
        (("show", "not-a-uuid"), 2, "identity.invalid_physical_id"),
        (("show", pid, "--limit", "0"), 2, "request.invalid_page"),
    ]
    for n, (args, status, code) in enumerate(cases):
        if n % 6 == 0:  # a few through a real process: what a shell script sees
            done = cli.refused("attestation", *args)
            exit_status, stderr = done.returncode, done.stderr
        else:
            exit_status, stderr = cli.refused_in_process("attestation", *args)
        assert exit_status == status, (args, stderr)
        assert stderr.startswith("error: ") and stderr.rstrip().endswith(f"[{code}]"), stderr
        assert stderr.count("\n") == 1, stderr
    assert cli.dump() == before


def test_every_command_has_help_with_an_example(cli: Cli) -> None:
    for args in (
        (),
        ("golden",),
        ("golden", "add"),
        ("golden", "list"),
        ("golden", "revoke"),
        ("show",),
    ):
        shown = cli.ok("attestation", *args, "--help")
        assert "Example:" in shown and "devicetrust attestation" in shown

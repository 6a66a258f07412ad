"""`devicetrust data` and `devicetrust feedback` as a user runs them (a subprocess), on the
`db` fixture's database (SQLite and PostgreSQL, via DEVICETRUST_DATABASE_URL): JSON output
read back, and bad input refused with `error: ... [code]`, a non-zero exit and no change."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from devicetrust.domain import SystemClock
from devicetrust.domain.ids import PhysicalId
from devicetrust.identity import UnitSpec
from devicetrust.ingest import InboundMessage, MessageKind, MessageStore
from devicetrust.runtime import Platform, Settings
from devicetrust.runtime.settings import DatabaseSettings
from devicetrust.store.database import Database
from devicetrust.vault import Vault
from tests.cli.conftest import Cli, clean_env
from tests.conftest import snapshot_tables

NAME = "line-03-left-welding-12"
UNKNOWN = "c2c38155-b0d2-48b6-82fd-22fe3b316224"


@dataclass(frozen=True)
class Seeded:
    cli: Cli
    unit: PhysicalId


@pytest.fixture
def seeded(db: Database, tmp_path: Path) -> Iterator[Seeded]:
    """NAME held by `unit`, which reported diagnostics 2 h and 5 min ago, and telemetry."""
    settings = Settings(data_dir=tmp_path / "data", database=DatabaseSettings(url=db.url))
    platform = Platform(settings, vault=Vault.from_key(os.urandom(32)))
    try:
        unit = platform.identity.register(UnitSpec("RA-7", {}), actor="test").physical_id
        platform.identity.create_logical(NAME, actor="test")
        platform.identity.bind(NAME, unit, actor="test")
        clock = SystemClock()
        store = MessageStore(platform.db, clock)
        now = clock.now()
        for body, age, kind in (
            ({"parts_per_hour": 118}, timedelta(hours=2), MessageKind.DIAGNOSTICS),
            ({"parts_per_hour": 121}, timedelta(minutes=5), MessageKind.DIAGNOSTICS),
            ({"torque": [1.5]}, timedelta(minutes=5), MessageKind.TELEMETRY),
        ):
            message = InboundMessage(unit, kind, json.dumps(body).encode(), now - age)
            assert store.store(message).outcome.value == "stored"
    finally:
        platform.close()
    workdir = tmp_path / "work"
    workdir.mkdir()
    cli = Cli(cwd=workdir, env={**clean_env(), "DEVICETRUST_DATABASE_URL": db.url})
    yield Seeded(cli, PhysicalId(unit))


def test_data_queries(seeded: Seeded) -> None:
    cli, unit = seeded.cli, seeded.unit
    everything = cli.json("data", "diagnostics", NAME)["items"]
    assert [m["payload"] for m in everything] == [{"parts_per_hour": 121},
                                                  {"parts_per_hour": 118}]
    assert {m["physical_id"] for m in everything} == {unit}
    recent = cli.json("data", "diagnostics", NAME, "--since", "1h")["items"]
    assert [m["payload"] for m in recent] == [{"parts_per_hour": 121}]
    older = cli.json("data", "diagnostics", NAME, "--until", "1h", "--limit", "5")["items"]
    assert [m["payload"] for m in older] == [{"parts_per_hour": 118}]
    telemetry = cli.json("data", "telemetry", unit, "--since", "30m")["items"]
    assert [(m["kind"], m["payload"]) for m in telemetry] == [("telemetry", {"torque": [1.5]})]
    assert cli.ok("data", "diagnostics", NAME, "--since", "1h").returncode == 0  # the table


def test_feedback_send_status_list(seeded: Seeded) -> None:
    cli = seeded.cli
    sent = cli.json("feedback", "send", NAME, "--json-payload", '{"speed": 0.8}', "--ttl", "30m")
    assert (sent["status"], sent["payload"], sent["logical_name"]) == (
        "pending", {"speed": 0.8}, NAME)
    assert cli.json("feedback", "status", sent["feedback_id"]) == sent
    again = cli.json("feedback", "send", NAME, "--json-payload", '{"speed": 0.5}')
    listed = cli.json("feedback", "list", NAME)["items"]
    assert [f["feedback_id"] for f in listed] == [again["feedback_id"], sent["feedback_id"]]
    assert cli.ok("feedback", "status", sent["feedback_id"]).returncode == 0  # the panel
    assert cli.ok("feedback", "list", NAME).returncode == 0  # the table


BAD: list[tuple[list[str], int, str]] = [
    (["data", "diagnostics", "line-99-z"], 4, "identity.logical_not_found"),
    (["data", "diagnostics", "Bad_Name"], 2, "identity.invalid_name"),
    (["data", "diagnostics", NAME, "--since", "yesterday"], 2, "ingest.bad_time"),
    (["data", "diagnostics", NAME, "--since", "2026-11-25T08:00"], 2, "ingest.bad_time"),
    (["data", "diagnostics", NAME, "--since", "1h", "--until", "2h"], 2, "ingest.bad_window"),
    (["data", "diagnostics", NAME, "--limit", "0"], 2, "ingest.bad_limit"),
    (["data", "telemetry", "robot-1"], 2, "identity.invalid_physical_id"),
    (["data", "telemetry", UNKNOWN], 4, "identity.physical_not_found"),
    (["feedback", "send", NAME, "--json-payload", "[1]"], 2, "cli.bad_json"),
    (["feedback", "send", NAME, "--json-payload", '{"x": NaN}'], 2, "cli.bad_json"),
    (["feedback", "send", NAME, "--json-payload", "{"], 2, "cli.bad_json"),
    (["feedback", "send", NAME, "--json-payload", "{}", "--ttl", "soon"], 2, "ingest.bad_ttl"),
    (["feedback", "send", NAME, "--json-payload", "{}", "--ttl", "31d"], 2, "ingest.bad_ttl"),
    (["feedback", "send", "line-99-z", "--json-payload", "{}"], 4, "identity.logical_not_found"),
    (["feedback", "status", UNKNOWN], 4, "ingest.feedback_not_found"),
    (["feedback", "list", NAME, "--limit", "0"], 2, "cli.bad_limit"),
]


@pytest.mark.parametrize(("args", "exit_code", "code"), BAD, ids=[" ".join(a) for a, _, _ in BAD])
def test_bad_input_is_refused_and_changes_nothing(
    seeded: Seeded, db: Database, args: list[str], exit_code: int, code: str
) -> None:
    before = snapshot_tables(db)
    done = seeded.cli(*args)
    assert done.returncode == exit_code, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.endswith(f" [{code}]\n"), done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert snapshot_tables(db) == before

"""`devicetrust simulate` end to end: a server in the command's process, five simulated arms
over the network, the final counters as JSON, checked against the data directory."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from tests.cli.conftest import Cli


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, dict[str, object]]:
    from tests.cli.conftest import clean_env

    workdir = tmp_path_factory.mktemp("simulate")
    cli = Cli(cwd=workdir, env=clean_env())
    done = cli.ok("simulate", "--devices", "5", "--lines", "2", "--duration", "3",
                  "--faults", "disconnect,bad-cert", "--seed", "3", "--json")
    return cli, json.loads(done.stdout)


def test_the_fleet_ran_and_every_acknowledged_message_is_stored(
    simulated: tuple[Cli, dict[str, object]],
) -> None:
    cli, summary = simulated
    assert summary["provisioned"] == 5 and summary["connected"] == 5
    assert summary["pending"] == 0 and summary["published"] == summary["acked"]
    assert summary["feedback_received"] == summary["feedback_applied"] == 2  # one per line
    assert summary["faults_unexpected"] == {}
    with sqlite3.connect(cli.db_path) as db:
        stored = db.execute("SELECT count(*), count(DISTINCT message_key) FROM device_messages")
        assert stored.fetchone() == (summary["acked"], summary["acked"])
        names = [row[0] for row in db.execute(
            "SELECT DISTINCT logical_name FROM device_messages")]
        slowed = db.execute("SELECT count(*) FROM feedback_messages").fetchone()[0]
    assert all(re.fullmatch(r"plant-1-line-0[12]-arm-\d{3}", name) for name in names)
    assert sorted(name[:15] for name in names) == ["plant-1-line-01"] * 3 + ["plant-1-line-02"] * 2
    assert slowed == 2


def test_bad_input_is_refused_before_anything_changes(cli: Cli) -> None:
    for args, code in ((["--faults", "meteor"], "cli.bad_faults"),
                       (["--devices", "0"], "cli.bad_devices"),
                       (["--site", "plant 1"], "cli.bad_site"),
                       (["--duration", "0"], "cli.bad_duration")):
        done = cli("simulate", *args)
        assert done.returncode == 2, done.stderr
        assert f"[{code}]" in done.stderr
    assert not cli.data_dir.exists()


def test_help_has_examples(cli: Cli) -> None:
    out = cli.ok("simulate", "--help").stdout
    assert "devicetrust simulate --devices 50 --duration 20" in out
    assert "--faults" in out

"""The data directory's disk full under `devicetrust serve` (SQLite on a small tmpfs): the
gateway acknowledges nothing it could not store and says why, the API and the CLI answer
with a clear error instead of a traceback, nothing is corrupted (`PRAGMA integrity_check`,
`devicetrust audit verify`), and everything resumes once space is freed."""

from __future__ import annotations

import json
import sqlite3
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from devicetrust.vault import generate_kek_text
from tests.cli.conftest import clean_env
from tests.device.client.platform import Platform
from tests.faults.fleet import provisioned_fleet, stored, until
from tests.faults.probe import Probe
from tests.faults.serve import killable_platform
from tests.faults.tmpfs import fill, small_disk

DATA = ".devicetrust"  # the default data directory, in the platform's work directory
OUTAGE_REASONS = {0x80, 0x88, 0x89, 0x97}


def test_disk_full_under_load(tmp_path: Path) -> None:
    with small_disk(tmp_path / DATA, "16m") as disk, killable_platform(tmp_path) as serve:
        platform = serve.platform
        [probe_device] = provisioned_fleet(platform, tmp_path, 1)
        url = f"sqlite+pysqlite:///{disk / 'devicetrust.db'}"
        probe = Probe(platform, probe_device.data_dir, probe_device.keystore)
        assert probe.connect()
        before = probe.publish(5)
        assert until(lambda: probe.acknowledged() == set(before))

        filler = fill(disk)
        sent: list[str] = []
        while probe.connected and len(sent) < 5000:  # until a write does not fit
            sent += probe.publish(20)
            until(lambda: not probe.connected or len(probe.acks()) >= len(before) + len(sent),  # noqa: B023
                  timeout=10)
        assert not probe.connected, "5000 messages stored on a full disk"
        assert set(probe.disconnects) <= OUTAGE_REASONS, probe.disconnects
        assert probe.acknowledged() <= set(stored(url, probe_device.physical_id))
        status, problem = _post(platform, "/v1/physical-identities", {"model": "arm-r7"})
        assert status == 503 and isinstance(problem, dict), problem
        assert problem["code"] == "store.unavailable", problem

        filler.unlink()
        assert until(probe.connect)
        redo = probe.publish(again=sent)
        assert until(lambda: probe.acknowledged() >= set(redo))
        assert sorted(stored(url, probe_device.physical_id)) == sorted(before + sent)
        probe.close()
        with sqlite3.connect(disk / "devicetrust.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert "audit log intact" in platform.cli("audit", "verify")
        print(f"\ndisk full: {len(sent)} messages sent on the full disk, "
              f"{len(probe.acknowledged() & set(sent))} acknowledged after space was freed; "
              f"disconnects {[hex(r) for r in probe.disconnects]}; API: {status} {problem['code']}")


def _post(platform: Platform, path: str, body: object) -> tuple[int, object]:
    request = urllib.request.Request(
        platform.url + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {platform.token}",
                 "Content-Type": "application/json"})
    context = ssl.create_default_context(cafile=str(platform.ca_bundle))
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_cli_on_a_full_disk_answers_with_a_clear_error(tmp_path: Path) -> None:
    env = clean_env()
    env["DEVICETRUST_KEK"] = generate_kek_text()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "devicetrust.cli.main", *args],
                              cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=60, check=False)

    with small_disk(tmp_path / DATA, "8m") as disk:
        assert cli("init").returncode == 0
        filler = fill(disk)
        done = cli("identity", "create", "full-disk-01")
        assert done.returncode != 0
        filler.unlink()
        with sqlite3.connect(disk / "devicetrust.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert cli("audit", "verify").returncode == 0
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode == 7 and "[store.unavailable]" in done.stderr, done.stderr

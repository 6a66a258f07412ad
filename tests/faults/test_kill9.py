"""`kill -9` of `devicetrust serve` under QoS 1 load: every message that got a PUBACK is in
the database after the kill, the devices reconnect to the restarted server by themselves and
resend what was not acknowledged, and in the end every message is stored exactly once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.faults.fleet import (
    Device,
    closing,
    database_url,
    drained,
    load,
    pending,
    provisioned_fleet,
    stored,
    until,
)
from tests.faults.serve import Serve, killable_platform

DEVICES = 3
ACKED = 300  # messages acknowledged in each round before the kill


def _kill_under_load(serve: Serve, devices: list[Device], rounds: int) -> None:
    platform = serve.platform
    url = database_url(platform)
    in_flight, recoveries = [], []
    for device in devices:
        device.open(platform)
    for _ in range(rounds):
        acknowledged_before = _acknowledged(devices)
        with load(devices):  # the kill lands under load, with messages in flight
            assert until(lambda: _acknowledged(devices) >= acknowledged_before + ACKED)  # noqa: B023
            serve.kill()  # the devices go on producing a moment longer, offline
        for device in devices:
            device.close()
        unacknowledged = 0
        for device in devices:
            acknowledged = device.acknowledged()
            in_db = set(stored(url, device.physical_id))
            assert acknowledged <= in_db, acknowledged - in_db
            unacknowledged += len(device.published) - len(acknowledged)
        in_flight.append(unacknowledged)
        began = time.monotonic()
        serve.start()
        for device in devices:
            device.open(platform)
        assert until(lambda: drained(devices))
        recoveries.append(round(time.monotonic() - began, 1))
    for device in devices:
        assert sorted(stored(url, device.physical_id)) == sorted(device.published)  # all of them, each exactly once
    published = sum(len(d.published) for d in devices)
    print(f"\nkill -9 ({url.split(':', 1)[0]}): {published} messages published, all stored "
          f"exactly once; {serve.restarts} restarts; unacknowledged at each kill {in_flight} "
          f"(resent after the restart); drained {recoveries} s after each restart")


def _acknowledged(devices: list[Device]) -> int:
    return sum(len(d.published) for d in devices) - pending(devices)


def _run(tmp_path: Path, database_url: str | None, rounds: int) -> None:
    with killable_platform(tmp_path, database_url) as serve, closing(
        provisioned_fleet(serve.platform, tmp_path, DEVICES)
    ) as devices:
        _kill_under_load(serve, devices, rounds)


def test_kill_9_under_qos1_load_loses_nothing_acknowledged_sqlite(tmp_path: Path) -> None:
    _run(tmp_path, None, rounds=1)


@pytest.mark.slow
def test_kill_9_repeatedly_under_qos1_load_postgres(tmp_path: Path, fresh_pg_url: str) -> None:
    _run(tmp_path, fresh_pg_url, rounds=3)


@pytest.mark.slow
def test_kill_9_repeatedly_under_qos1_load_sqlite(tmp_path: Path) -> None:
    _run(tmp_path, None, rounds=3)

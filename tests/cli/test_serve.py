"""`devicetrust serve`: the API answers, and SIGTERM/SIGINT stop it cleanly (exit 0)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.conftest import free_port

if TYPE_CHECKING:
    from tests.cli.conftest import Cli

START_TIMEOUT = 30.0
SERVE = [sys.executable, "-m", "devicetrust.cli.main", "serve"]


def _started(cli: Cli, *extra: str) -> tuple[subprocess.Popen[str], int]:
    """`devicetrust serve` on a free port, once it answers /healthz."""
    port = free_port()
    server = subprocess.Popen(
        [*SERVE, "--port", str(port), *extra],
        cwd=cli.cwd,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if server.poll() is not None:
            raise AssertionError(server.communicate()[1])
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0, trust_env=False)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                server.kill()
                raise AssertionError("serve did not start") from None
            time.sleep(0.2)
            continue
        assert answer.status_code == 200
        return server, port


def _stopped(server: subprocess.Popen[str], stop_signal: signal.Signals) -> None:
    try:
        server.send_signal(stop_signal)
        _, stderr = server.communicate(timeout=60)
        assert server.returncode == 0, stderr
        assert "Traceback" not in stderr
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_serve_answers_and_stops_cleanly(kek_cli: Cli, stop_signal: signal.Signals) -> None:
    server, _ = _started(kek_cli)
    _stopped(server, stop_signal)


def test_serve_refuses_to_start_without_a_kek(cli: Cli) -> None:
    done = cli("serve", "--port", str(free_port()))
    assert done.returncode == 6
    assert "[config.kek_missing]" in done.stderr


def test_serve_with_two_workers_answers_from_both_and_stops_cleanly(kek_cli: Cli) -> None:
    """`--workers 2`: two API processes share the port; SIGTERM stops them all (exit 0)
    and leaves no process behind."""
    server, port = _started(kek_cli, "--workers", "2")
    children = _children(server.pid)
    try:
        assert len(children) == 2, children
        for _ in range(20):  # fresh connections, spread over the workers by the kernel
            got = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5.0, trust_env=False)
            assert got.status_code == 200
    finally:
        _stopped(server, signal.SIGTERM)
    assert not [pid for pid in children if _alive(pid)]


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

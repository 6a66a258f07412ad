"""`devicetrust serve`: the API answers, and SIGTERM/SIGINT stop it cleanly (exit 0)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from tests.cli.conftest import Cli

START_TIMEOUT = 30.0
SERVE = [sys.executable, "-m", "devicetrust.cli.main", "serve"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_serve_answers_and_stops_cleanly(kek_cli: Cli, stop_signal: signal.Signals) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "devicetrust.cli.main", "serve", "--port", str(port)],
        cwd=kek_cli.cwd,
        env=kek_cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert server.poll() is None, server.communicate()[1]
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0, trust_env=False)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        assert answer.status_code == 200
        server.send_signal(stop_signal)
        _, stderr = server.communicate(timeout=30)
        assert server.returncode == 0, stderr
        assert "Traceback" not in stderr
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()


def test_serve_refuses_to_start_without_a_kek(cli: Cli) -> None:
    done = cli("serve", "--port", str(_free_port()))
    assert done.returncode == 6
    assert "[config.kek_missing]" in done.stderr


def test_serve_with_two_workers_answers_from_both_and_stops_cleanly(kek_cli: Cli) -> None:
    """`--workers 2`: two API processes share the port; SIGTERM stops them all (exit 0)
    and leaves no process behind."""
    port = _free_port()
    server = subprocess.Popen(
        [*SERVE, "--port", str(port), "--workers", "2"],
        cwd=kek_cli.cwd,
        env=kek_cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert server.poll() is None, server.communicate()[1]
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0, trust_env=False)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        assert answer.status_code == 200
        children = _children(server.pid)
        assert len(children) == 2, children
        for _ in range(20):  # fresh connections, spread over the workers by the kernel
            got = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5.0, trust_env=False)
            assert got.status_code == 200
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
        assert server.returncode == 0, stderr
        assert "Traceback" not in stderr
        assert not [pid for pid in children if _alive(pid)]
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()


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

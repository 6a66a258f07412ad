"""`devicetrust serve`: the API answers, and SIGTERM/SIGINT stop it cleanly (exit 0)."""

from __future__ import annotations

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

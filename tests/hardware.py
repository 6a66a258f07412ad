"""Starters for the simulated hardware the tests drive: swtpm (a TPM 2.0 on loopback ports)
and SoftHSM2 tokens (PKCS#11), shared by the provisioning, PKI and device keystore tests.

Nothing global is touched: each TPM gets its state directory and free ports, each SoftHSM
configuration its token directory. Missing tools skip on a laptop and fail in CI
(`require_service`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_service

START_TIMEOUT = 10.0
SOFTHSM_MODULE = Path(
    os.environ.get("DEVICETRUST_TEST_SOFTHSM_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
)


def free_port_pair() -> int:
    """A free loopback port P with P+1 free too: the swtpm TCTI finds the control channel at
    P+1."""
    for _ in range(50):
        with socket.socket() as server, socket.socket() as ctrl:
            server.bind(("127.0.0.1", 0))
            port: int = server.getsockname()[1]
            try:
                ctrl.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    pytest.fail("no two consecutive free loopback ports")


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"swtpm exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    pytest.fail("swtpm did not start listening")


def require_swtpm() -> None:
    if shutil.which("swtpm") is None:
        require_service("swtpm", "swtpm not on PATH (apt install swtpm swtpm-tools)")
    try:
        import tpm2_pytss  # noqa: F401
    except ImportError as exc:
        require_service("tpm2-pytss", str(exc))


class SwtpmProcess:
    """One swtpm serving the TPM state in `state` on free loopback ports; `restart` stops it
    and serves the same state again (a device reboot: PCRs reset, keys persist)."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.start()

    @property
    def tcti(self) -> str:
        return f"swtpm:host=127.0.0.1,port={self.port}"

    def start(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.port = free_port_pair()
        ctrl = self.port + 1
        self._process = subprocess.Popen(
            [
                "swtpm", "socket", "--tpm2",
                "--server", f"type=tcp,port={self.port},bindaddr=127.0.0.1",
                "--ctrl", f"type=tcp,port={ctrl},bindaddr=127.0.0.1",
                "--tpmstate", f"dir={self.state}", "--flags", "not-need-init,startup-clear",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_listening(ctrl, self._process)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass(frozen=True)
class SoftHsmToken:
    """A token initialised in its own SoftHSM configuration (`conf`, for SOFTHSM2_CONF)."""

    conf: Path
    label: str
    pin: str
    so_pin: str


def init_softhsm_token(root: Path, label: str) -> SoftHsmToken:
    """A fresh configuration under `root` with one token `label` and random PINs. SoftHSM
    reads SOFTHSM2_CONF at C_Initialize: the caller points it at `conf` and reinitialises
    the module."""
    util = shutil.which("softhsm2-util")
    if not SOFTHSM_MODULE.is_file() or util is None:
        require_service(
            "SoftHSM2", f"needs {SOFTHSM_MODULE} and softhsm2-util (apt-get install softhsm2)"
        )
    assert util is not None
    (root / "tokens").mkdir(mode=0o700, parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
    )
    pin, so_pin = secrets.token_hex(8), secrets.token_hex(8)
    init = [util, "--init-token", "--free", "--label", label, "--so-pin", so_pin, "--pin", pin]
    result = subprocess.run(
        init,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
    )
    if result.returncode != 0:
        require_service("SoftHSM2", f"softhsm2-util --init-token failed: {result.stderr.strip()}")
    return SoftHsmToken(conf, label, pin, so_pin)

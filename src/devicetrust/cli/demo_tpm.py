"""The demo units' TPMs: when swtpm and tpm2-pytss are installed, each unit gets its own
simulated TPM 2.0, which seals its keystore's store key (`file:...?tpm=<tcti>`) instead of a
device secret.

Each swtpm listens on loopback ports free now and keeps its state in a private temporary
folder that is deleted, with the processes, when the demo ends: a simulated TPM's state
file holds its seeds unencrypted, so leaving it next to the keystore it seals would put the
unit's keys within reach of anyone reading the folder. Like the device secrets of the
software mode, the TPMs are gone after the run, and the keystores on disk stay sealed.

Without swtpm (or when one does not start), the units fall back to device secrets.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

START_SECONDS = 10.0
STOP_SECONDS = 5.0


class UnitTpms:
    """Start with `start_for(physical_id)`; `close()` stops every TPM and erases its state."""

    def __init__(self) -> None:
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._processes: list[subprocess.Popen[bytes]] = []

    @staticmethod
    def available() -> bool:
        return shutil.which("swtpm") is not None and _has_module("tpm2_pytss")

    def start_for(self, physical_id: str) -> str | None:
        """The TCTI of a new TPM for this unit, or None when none could be started."""
        if not self.available():
            return None
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="devicetrust-demo-tpm-")
        state = Path(self._folder.name) / physical_id
        state.mkdir(mode=0o700)
        port = _free_port_pair()
        if port is None:
            return None
        process = subprocess.Popen(
            [
                "swtpm", "socket", "--tpm2",
                "--server", f"type=tcp,port={port},bindaddr=127.0.0.1",
                "--ctrl", f"type=tcp,port={port + 1},bindaddr=127.0.0.1",
                "--tpmstate", f"dir={state}", "--flags", "not-need-init,startup-clear",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._processes.append(process)
        if not _listening(port + 1, process):
            return None
        return f"swtpm:host=127.0.0.1,port={port}"

    def close(self) -> None:
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None


def keystore_uri(path: Path, tcti: str | None) -> str:
    """`file:<path>`, sealed by the TPM at `tcti` when there is one."""
    if tcti is None:
        return f"file:{path}"
    return f"file:{path}?tpm={quote(tcti, safe='')}"


def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _free_port_pair() -> int | None:
    """A free loopback port P with P+1 free too (the swtpm TCTI finds its control channel
    at P+1)."""
    for _ in range(50):
        with socket.socket() as server, socket.socket() as ctrl:
            server.bind(("127.0.0.1", 0))
            port = int(server.getsockname()[1])
            try:
                ctrl.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    return None


def _listening(port: int, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False

"""A software TPM 2.0 (swtpm) on loopback, for development, the demo and tests:

    with Swtpm(Path("/tmp/tpm-state")) as tpm:      # free ports P and P+1 on 127.0.0.1
        TpmKeystore(tpm.tcti)                         # swtpm:host=127.0.0.1,port=P

Serves the TPM state kept in `state` (seeds unencrypted: keep it private, or delete it);
`restart()` serves the same state again, like a device reboot (PCRs reset, keys persist).
Never binds a non-loopback address.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from devicetrust.device.tpm._errors import TpmUnavailable

START_SECONDS = 10.0
STOP_SECONDS = 5.0


class Swtpm:
    """One swtpm process serving `state`; started by the constructor."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self.start()

    @staticmethod
    def available() -> bool:
        """swtpm on the PATH and tpm2-pytss importable."""
        return (
            shutil.which("swtpm") is not None
            and importlib.util.find_spec("tpm2_pytss") is not None
        )

    @property
    def tcti(self) -> str:
        return f"swtpm:host=127.0.0.1,port={self.port}"

    def start(self) -> None:
        """Serve `state` on fresh free ports; `TpmUnavailable` if swtpm does not listen."""
        self.state.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.port = free_port_pair()
        self._process = subprocess.Popen(
            [
                "swtpm", "socket", "--tpm2",
                "--server", f"type=tcp,port={self.port},bindaddr=127.0.0.1",
                "--ctrl", f"type=tcp,port={self.port + 1},bindaddr=127.0.0.1",
                "--tpmstate", f"dir={self.state}", "--flags", "not-need-init,startup-clear",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if not _listening(self.port + 1, self._process):
            self.stop()
            raise TpmUnavailable("swtpm did not start listening", port=self.port)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def free_port_pair() -> int:
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
    raise TpmUnavailable("no two consecutive free loopback ports for swtpm")


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

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

import tempfile
from pathlib import Path
from urllib.parse import quote

from devicetrust.device.tpm import Swtpm, TpmUnavailable


class UnitTpms:
    """Start with `start_for(physical_id)`; `close()` stops every TPM and erases its state."""

    def __init__(self) -> None:
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._tpms: list[Swtpm] = []

    @staticmethod
    def available() -> bool:
        return Swtpm.available()

    def start_for(self, physical_id: str) -> str | None:
        """The TCTI of a new TPM for this unit, or None when none could be started."""
        if not self.available():
            return None
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="devicetrust-demo-tpm-")
        try:
            tpm = Swtpm(Path(self._folder.name) / physical_id)
        except (TpmUnavailable, OSError):
            return None
        self._tpms.append(tpm)
        return tpm.tcti

    def close(self) -> None:
        for tpm in self._tpms:
            tpm.stop()
        self._tpms.clear()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None


def keystore_uri(path: Path, tcti: str | None) -> str:
    """`file:<path>`, sealed by the TPM at `tcti` when there is one."""
    if tcti is None:
        return f"file:{path}"
    return f"file:{path}?tpm={quote(tcti, safe='')}"

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
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devicetrust.device.tpm import Swtpm
from tests.conftest import require_service

START_TIMEOUT = 10.0
SOFTHSM_MODULE = Path(
    os.environ.get("DEVICETRUST_TEST_SOFTHSM_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
)


def require_swtpm() -> None:
    if shutil.which("swtpm") is None:
        require_service("swtpm", "swtpm not on PATH (apt install swtpm swtpm-tools)")
    try:
        import tpm2_pytss  # noqa: F401
    except ImportError as exc:
        require_service("tpm2-pytss", str(exc))


# One swtpm serving a state directory on free loopback ports (`restart`: a device reboot).
SwtpmProcess = Swtpm


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

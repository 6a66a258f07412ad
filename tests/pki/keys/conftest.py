"""A SoftHSM2 token for the PKCS#11 key backend tests, set up once per test run.

The fixture writes its own `softhsm2.conf` (token directory under pytest's tmp dir), points
`SOFTHSM2_CONF` at it and initialises one token with random PINs, so no test touches the
machine's own tokens. Without SoftHSM2 the tests skip on a laptop and fail in CI.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pkcs11
import pytest

from devicetrust.pki.keys import PinValue, Pkcs11Config, Pkcs11Connection
from tests.conftest import require_service

SOFTHSM_MODULE = Path(
    os.environ.get("DEVICETRUST_TEST_SOFTHSM_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
)
TOKEN_LABEL = "devicetrust"


@dataclass(frozen=True)
class SoftHsm:
    module: Path
    token: str
    pin: str
    so_pin: str

    def config(self) -> Pkcs11Config:
        return Pkcs11Config(module=self.module, pin=PinValue(self.pin))


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    util = shutil.which("softhsm2-util")
    if not SOFTHSM_MODULE.is_file() or util is None:
        require_service(
            "SoftHSM2", f"needs {SOFTHSM_MODULE} and softhsm2-util (apt-get install softhsm2)"
        )
    assert util is not None
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir(mode=0o700)
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
    )
    # SoftHSM reads SOFTHSM2_CONF at C_Initialize, i.e. when python-pkcs11 first loads the
    # module in this process; the token must exist before that.
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    pin, so_pin = secrets.token_hex(8), secrets.token_hex(8)
    init = [util, "--init-token", "--free", "--label", TOKEN_LABEL, "--so-pin", so_pin]
    result = subprocess.run([*init, "--pin", pin], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        require_service("SoftHSM2", f"softhsm2-util --init-token failed: {result.stderr.strip()}")
    # If this process loaded the module before (under another SOFTHSM2_CONF), re-run
    # C_Initialize so SoftHSM reads this configuration; no session exists yet to disturb.
    pkcs11.lib(str(SOFTHSM_MODULE)).reinitialize()
    try:
        yield SoftHsm(module=SOFTHSM_MODULE, token=TOKEN_LABEL, pin=pin, so_pin=so_pin)
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous


@pytest.fixture
def hsm(softhsm: SoftHsm) -> Iterator[Pkcs11Connection]:
    """A logged-in connection to the test token, closed (logged out) after the test."""
    with Pkcs11Connection(softhsm.config()) as connection:
        yield connection


@pytest.fixture
def object_label() -> str:
    """A key label no other test uses (the token lives for the whole run)."""
    return f"t-{secrets.token_hex(6)}"

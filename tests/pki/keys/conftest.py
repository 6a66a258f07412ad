"""A SoftHSM2 token for the PKCS#11 key backend tests, set up once per test run.

The fixture writes its own `softhsm2.conf` (token directory under pytest's tmp dir), points
`SOFTHSM2_CONF` at it and initialises one token with random PINs, so no test touches the
machine's own tokens. Without SoftHSM2 the tests skip on a laptop and fail in CI.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pkcs11
import pytest

from devicetrust.pki.keys import PinValue, Pkcs11Config, Pkcs11Connection
from tests.hardware import SOFTHSM_MODULE, init_softhsm_token

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
    made = init_softhsm_token(tmp_path_factory.mktemp("softhsm"), TOKEN_LABEL)
    # SoftHSM reads SOFTHSM2_CONF at C_Initialize, i.e. when python-pkcs11 first loads the
    # module in this process; the token exists before that.
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(made.conf)
    # If this process loaded the module before (under another SOFTHSM2_CONF), re-run
    # C_Initialize so SoftHSM reads this configuration; no session exists yet to disturb.
    pkcs11.lib(str(SOFTHSM_MODULE)).reinitialize()
    try:
        yield SoftHsm(module=SOFTHSM_MODULE, token=TOKEN_LABEL, pin=made.pin, so_pin=made.so_pin)
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

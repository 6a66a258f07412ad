"""The hierarchy with its CA keys in a PKCS#11 token (SoftHSM2): issuance, CRL signing in the
token, rotation with the root opened from the token for that step only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pkcs11
import pytest

from devicetrust.domain import FixedClock
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.pki import Keyring, PkiService
from devicetrust.pki.keys import KekPassword, PinValue, Pkcs11Config, Pkcs11Connection
from devicetrust.store.database import Database
from devicetrust.vault import Vault
from tests.hardware import SOFTHSM_MODULE, init_softhsm_token
from tests.pki.certs import ec_key, make_csr, verify
from tests.pki.conftest import ACTOR

MODULE = SOFTHSM_MODULE
TOKEN = "dt-pki-hierarchy"


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pkcs11Config]:
    """A fresh token in its own SoftHSM configuration; the previous configuration (another
    test module's token) is restored afterwards."""
    made = init_softhsm_token(tmp_path_factory.mktemp("softhsm-pki"), TOKEN)
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(made.conf)
    pin = made.pin
    library = pkcs11.lib(str(MODULE))
    library.reinitialize()
    try:
        yield Pkcs11Config(module=MODULE, pin=PinValue(pin))
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous
        library.reinitialize()


def test_hierarchy_in_a_token(
    sqlite_db: Database, clock: FixedClock, tmp_path: Path, token: Pkcs11Config
) -> None:
    with Vault.from_key(os.urandom(32)) as vault, Pkcs11Connection(token) as hsm:
        keys = Keyring(tmp_path / "ca", password=KekPassword(vault), pkcs11=hsm, pkcs11_token=TOKEN)
        pki = PkiService(sqlite_db, clock, keys)
        try:
            made = pki.init_hierarchy(actor=ACTOR)
            for ca in (made.root, made.issuing, made.manufacturing):
                assert ca.key_uri.startswith(f"pkcs11:token={TOKEN};")
            # Only the delegated OCSP signer keys are files (encrypted).
            assert all(p.name.startswith("ocsp-") for p in (tmp_path / "ca").iterdir())
            unit = IdentityService(sqlite_db, clock).register(UnitSpec("arm", {}), actor=ACTOR)
            cert = pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, actor=ACTOR)
            pki.revoke(cert.serial, "keyCompromise", actor=ACTOR)
            result = verify(
                tmp_path,
                root=made.root.pem,
                intermediate=made.issuing.pem,
                leaf=cert.pem,
                at=clock.now(),
                crl_pem=pki.latest_crl_record(made.issuing.ca_id).pem,
            )
            assert "certificate revoked" in result.stdout + result.stderr
            rotated = pki.rotate_intermediate(actor=ACTOR)
            assert rotated.key_uri.startswith("pkcs11:")
            fresh = pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, actor=ACTOR)
            result = verify(
                tmp_path,
                root=made.root.pem,
                intermediate=rotated.pem,
                leaf=fresh.pem,
                at=clock.now(),
                crl_pem=pki.latest_crl_record(rotated.ca_id).pem,
            )
            assert result.returncode == 0, result.stdout + result.stderr
        finally:
            pki.close()

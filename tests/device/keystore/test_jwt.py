"""`sign_jwt`: ES256 device tokens signed by any keystore's key, accepted by the server's
verifier (devicetrust.deviceauth, PyJWT) when signed in a TPM with the key of the unit's
operational certificate (`x5t#S256`)."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from devicetrust.device.keystore import KeystoreError, open_keystore, sign_jwt
from devicetrust.deviceauth import DeviceAuthService, device_verifier
from devicetrust.domain import DeviceState, FixedClock
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.pki import Hierarchy, PkiService, Profile, serial_text
from devicetrust.store.database import Database
from devicetrust.vault import Vault
from tests.hardware import SwtpmProcess

AUD = "mqtt.example.com"
ACTOR = "operator:test"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_file_key_token_verifies_with_pyjwt(tmp_path: Path) -> None:
    with open_keystore(f"file:{tmp_path / 'ks.json'}", secret=b"0123456789abcdef") as store:
        key = store.create_key("operational")
        token = sign_jwt(key, {"sub": "unit", "aud": AUD}, {"kid": "k1"})
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "typ": "JWT", "kid": "k1"}
    claims = jwt.decode(token, key.public_key(), algorithms=["ES256"], audience=AUD)
    assert claims == {"sub": "unit", "aud": AUD}


def test_the_algorithm_cannot_be_changed(tmp_path: Path) -> None:
    with open_keystore(f"file:{tmp_path / 'ks.json'}", secret=b"0123456789abcdef") as store:
        key = store.create_key("operational")
        with pytest.raises(KeystoreError):
            sign_jwt(key, {}, {"alg": "none"})


def test_the_server_accepts_a_token_signed_in_the_tpm(
    swtpm: SwtpmProcess,
    tmp_path: Path,
    db: Database,
    clock: FixedClock,
    ca_vault: Vault,
    pki: PkiService,
    hierarchy: Hierarchy,
    identity: IdentityService,
) -> None:
    unit = identity.register(UnitSpec("arm-r7", {}), actor="factory")
    identity.set_state(unit.physical_id, DeviceState.PROVISIONED, actor=ACTOR)
    identity.set_state(unit.physical_id, DeviceState.ACTIVE, actor=ACTOR)
    auth = DeviceAuthService(db, clock, ca_vault, cert_verifier=device_verifier(pki, clock))
    with open_keystore(f"tpm2:{swtpm.tcti}?dir={tmp_path}") as store:
        key = store.create_key("operational")
        csr = (  # the subject comes from the registry, not the CSR
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([]))
            .sign(key.signer(), hashes.SHA256())
        )
        pem = csr.public_bytes(serialization.Encoding.PEM)
        issued = pki.issue_from_csr(pem, unit.physical_id, Profile.DEVICE, actor=ACTOR)
        now = int(clock.now().timestamp())
        claims = {"sub": unit.physical_id, "aud": AUD, "iat": now, "exp": now + 600}
        thumbprint = _b64url(issued.certificate.fingerprint(hashes.SHA256()))
        token = sign_jwt(key, {**claims, "jti": uuid.uuid4().hex}, {"x5t#S256": thumbprint})
    device = auth.authenticate_jwt(token, audience=AUD)
    assert device.physical_id == unit.physical_id
    assert device.credential_id == serial_text(issued.serial)

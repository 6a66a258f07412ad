"""The `pkcs11:` keystore on SoftHSM2: keys generated non-extractable on the token, signing
on the token, secrets as private token objects, the PIN never in a URI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devicetrust.device.keystore import (
    InvalidKeystoreUri,
    KeyExists,
    KeyNotFound,
    Keystore,
    KeystoreError,
    KeystoreUnavailable,
    TlsKeyUnsupported,
    UnlockFailed,
    open_keystore,
)
from tests.device.keystore.tls_peer import DevicePki
from tests.hardware import SOFTHSM_MODULE, SoftHsmToken, init_softhsm_token

ECDSA = ec.ECDSA(hashes.SHA256())


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsmToken]:
    """A token in its own SoftHSM configuration; the previous one is restored afterwards."""
    made = init_softhsm_token(tmp_path_factory.mktemp("softhsm-device"), "device")
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(made.conf)
    library = pkcs11.lib(str(SOFTHSM_MODULE))
    library.reinitialize()
    try:
        yield made
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous
        library.reinitialize()


def _uri(token: SoftHsmToken, query: str = "") -> str:
    return f"pkcs11:module={SOFTHSM_MODULE};token={token.label}{query}"


@pytest.fixture
def store(token: SoftHsmToken) -> Iterator[Keystore]:
    """An open keystore on the token; the test's keys are deleted afterwards."""
    with open_keystore(_uri(token), secret=token.pin.encode()) as opened:
        yield opened
    with open_keystore(_uri(token), secret=token.pin.encode()) as cleanup:
        for label in cleanup.labels():
            cleanup.delete_key(label)


def test_a_key_generated_on_the_token_signs_after_a_reopen(
    store: Keystore, token: SoftHsmToken
) -> None:
    key = store.create_key("operational")
    assert key.hardware and store.kind == "pkcs11"
    public = key.public_key()
    public.verify(key.sign(b"telemetry"), b"telemetry", ECDSA)
    store.close()
    with open_keystore(_uri(token), secret=token.pin.encode()) as again:
        reloaded = again.key("operational")
        assert reloaded.public_key().public_numbers() == public.public_numbers()
        public.verify(reloaded.sign(b"diagnostics"), b"diagnostics", ECDSA)


def test_the_private_key_is_sensitive_and_never_extractable(
    store: Keystore, token: SoftHsmToken
) -> None:
    store.create_key("locked")
    with pytest.raises(KeystoreError) as caught:  # login is per process: one keystore a token
        open_keystore(_uri(token), secret=token.pin.encode())
    assert caught.value.code == "keystore.already_open"
    store.close()
    session = (
        pkcs11.lib(str(SOFTHSM_MODULE)).get_token(token_label=token.label).open(user_pin=token.pin)
    )
    with session:
        private = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label="locked")
        assert private[pkcs11.Attribute.SENSITIVE]
        assert not private[pkcs11.Attribute.EXTRACTABLE]
        assert private[pkcs11.Attribute.NEVER_EXTRACTABLE]
        with pytest.raises(pkcs11.exceptions.PKCS11Error):
            private[pkcs11.Attribute.VALUE]


def test_labels_exist_once_and_delete(store: Keystore) -> None:
    store.create_key("a")
    with pytest.raises(KeyExists):
        store.create_key("a")
    store.create_key("b")
    store.delete_key("a")
    with pytest.raises(KeyNotFound):
        store.key("a")
    assert store.labels() == ["b"]


def test_the_signer_makes_a_csr_on_the_token(store: Keystore) -> None:
    key = store.create_key("operational")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unit")])
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .sign(key.signer(), hashes.SHA256())
    )
    assert isinstance(key.signer(), ec.EllipticCurvePrivateKey)
    assert csr.is_signature_valid


def test_seal_replace_and_unseal(store: Keystore) -> None:
    store.seal("psk", b"first")
    store.seal("psk", bytearray(b"second"))
    assert store.unseal("psk") == bytearray(b"second")
    with pytest.raises(KeyNotFound):
        store.unseal("nothing")


def test_tls_is_refused_with_a_pointer_to_jwt(store: Keystore) -> None:
    pki = DevicePki()
    key = store.create_key("operational")
    with pytest.raises(TlsKeyUnsupported):
        key.load_into(pki.client_context(), pki.client_chain(key.public_key(), "unit"))


def test_a_wrong_pin_opens_nothing(token: SoftHsmToken) -> None:
    with pytest.raises(UnlockFailed) as caught:
        open_keystore(_uri(token), secret=b"not-the-pin")
    assert token.pin not in str(caught.value)


def test_the_pin_from_the_environment(token: SoftHsmToken, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DT_TEST_PIN", token.pin)
    with open_keystore(_uri(token, "?pin-source=env:DT_TEST_PIN")) as opened:
        assert opened.kind == "pkcs11"
    monkeypatch.delenv("DT_TEST_PIN")
    with pytest.raises(KeystoreError) as caught:
        open_keystore(_uri(token, "?pin-source=env:DT_TEST_PIN"))
    assert caught.value.code == "keystore.needs_secret"


def test_the_pin_from_a_private_file(token: SoftHsmToken, tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(token.pin + "\n")
    pin_file.chmod(0o600)
    with open_keystore(_uri(token, f"?pin-source=file:{pin_file}")) as opened:
        assert opened.kind == "pkcs11"
    pin_file.chmod(0o644)
    with pytest.raises(KeystoreError) as caught:
        open_keystore(_uri(token, f"?pin-source=file:{pin_file}"))
    assert caught.value.code == "keystore.insecure_permissions"


def test_no_pin_in_the_uri(token: SoftHsmToken) -> None:
    with pytest.raises(InvalidKeystoreUri):
        open_keystore(f"pkcs11:module={SOFTHSM_MODULE};token={token.label};pin-value=1234")


def test_an_unknown_token_is_unavailable(token: SoftHsmToken) -> None:
    with pytest.raises(KeystoreUnavailable):
        open_keystore(f"pkcs11:module={SOFTHSM_MODULE};token=absent", secret=b"1234")

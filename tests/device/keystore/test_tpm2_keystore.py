"""The `tpm2:` keystore on swtpm: keys born in the TPM and bound to it, blobs that survive a
restart, signatures and CSRs made by the TPM, secrets sealed to it and to PCR values."""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devicetrust.device.keystore import (
    KeyExists,
    KeyNotFound,
    KeystoreError,
    TlsKeyUnsupported,
    UnlockFailed,
    open_keystore,
)
from devicetrust.device.keystore._tpm2 import Tpm2Keystore
from tests.device.keystore.tls_peer import DevicePki
from tests.hardware import SwtpmProcess

ECDSA = ec.ECDSA(hashes.SHA256())


def _open(tpm: SwtpmProcess, directory: Path) -> Tpm2Keystore:
    store = open_keystore(f"tpm2:{tpm.tcti}?dir={directory}")
    assert isinstance(store, Tpm2Keystore)
    return store


def test_a_key_survives_a_tpm_restart(
    new_swtpm: Callable[[str], SwtpmProcess], tmp_path: Path
) -> None:
    tpm = new_swtpm("device")
    blobs = tmp_path / "blobs"
    with _open(tpm, blobs) as store:
        key = store.create_key("operational")
        public = key.public_key()
        assert key.hardware and store.kind == "tpm2"
    tpm.restart()
    with _open(tpm, blobs) as store:
        assert store.labels() == ["operational"]
        key = store.key("operational")
        assert key.public_key().public_numbers() == public.public_numbers()
        public.verify(key.sign(b"telemetry"), b"telemetry", ECDSA)


def test_keys_are_born_in_the_tpm_and_bound_to_it(swtpm: SwtpmProcess, tmp_path: Path) -> None:
    import tpm2_pytss

    with _open(swtpm, tmp_path) as store:
        key = store.create_key("bound")
    public, _ = tpm2_pytss.types.TPM2B_PUBLIC.unmarshal(key.blob.public)
    attributes = public.publicArea.objectAttributes
    flags = tpm2_pytss.constants.TPMA_OBJECT
    for required in (
        flags.FIXEDTPM,
        flags.FIXEDPARENT,
        flags.SENSITIVEDATAORIGIN,
        flags.SIGN_ENCRYPT,
    ):
        assert attributes & required
    assert not attributes & flags.DECRYPT
    blob = tmp_path / "bound.key.json"
    assert stat.S_IMODE(blob.stat().st_mode) == 0o600
    assert json.loads(blob.read_bytes())["format"] == "devicetrust-tpm2-blob/1"


def test_another_tpm_cannot_use_the_blob(
    swtpm: SwtpmProcess, new_swtpm: Callable[[str], SwtpmProcess], tmp_path: Path
) -> None:
    with _open(swtpm, tmp_path) as store:
        store.create_key("stolen")
        store.seal("stolen-secret", b"psk")
    with _open(new_swtpm("thief"), tmp_path) as thief:
        with pytest.raises(KeystoreError) as caught:
            thief.key("stolen").sign(b"x")
        assert caught.value.code == "keystore.tpm_failed"
        with pytest.raises(UnlockFailed):
            thief.unseal("stolen-secret")


def test_labels_exist_once_and_delete(swtpm: SwtpmProcess, tmp_path: Path) -> None:
    with _open(swtpm, tmp_path) as store:
        store.create_key("a")
        with pytest.raises(KeyExists):
            store.create_key("a")
        store.delete_key("a")
        with pytest.raises(KeyNotFound):
            store.key("a")
        assert store.labels() == []


def test_the_signer_makes_a_csr_in_the_tpm(swtpm: SwtpmProcess, tmp_path: Path) -> None:
    with _open(swtpm, tmp_path) as store:
        key = store.create_key("operational")
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unit")])
        signer = key.signer()
        csr = (
            x509.CertificateSigningRequestBuilder().subject_name(name).sign(signer, hashes.SHA256())
        )
        with pytest.raises(TypeError):
            signer.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
    assert csr.is_signature_valid
    assert csr.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]


def test_tls_is_refused_with_a_pointer_to_jwt(swtpm: SwtpmProcess, tmp_path: Path) -> None:
    pki = DevicePki()
    with _open(swtpm, tmp_path) as store:
        key = store.create_key("operational")
        with pytest.raises(TlsKeyUnsupported) as caught:
            key.load_into(pki.client_context(), pki.client_chain(key.public_key(), "unit"))
    assert "sign_jwt" in str(caught.value)


def test_seal_and_unseal(swtpm: SwtpmProcess, tmp_path: Path) -> None:
    with _open(swtpm, tmp_path) as store:
        store.seal("psk", bytearray(b"0123456789abcdef"))
    with _open(swtpm, tmp_path) as store:
        assert store.unseal("psk") == bytearray(b"0123456789abcdef")
        with pytest.raises(KeyNotFound):
            store.unseal("other")
    assert b"0123456789abcdef" not in (tmp_path / "psk.sealed.json").read_bytes()


def test_a_secret_sealed_to_a_pcr_opens_only_while_it_holds(
    new_swtpm: Callable[[str], SwtpmProcess], tmp_path: Path
) -> None:
    tpm = new_swtpm("measured")
    with _open(tpm, tmp_path) as store:
        store.seal("disk-key", b"k" * 32, pcrs=[16])
        assert store.unseal("disk-key") == b"k" * 32
        subprocess.run(
            ["tpm2_pcrextend", "-T", tpm.tcti, "16:sha256=" + "ab" * 32],
            check=True,
            capture_output=True,
        )
        with pytest.raises(UnlockFailed):
            store.unseal("disk-key")
    tpm.restart()  # a reboot resets PCR 16: the expected measurement holds again
    with _open(tpm, tmp_path) as store:
        assert store.unseal("disk-key") == b"k" * 32


def test_a_file_keystore_sealed_by_the_tpm(
    swtpm: SwtpmProcess, new_swtpm: Callable[[str], SwtpmProcess], tmp_path: Path
) -> None:
    path = tmp_path / "keystore.json"
    uri = f"file:{path}?tpm={swtpm.tcti}"
    with open_keystore(uri) as store:
        public = store.create_key("operational").public_key()
        store.seal("psk", b"sealed twice")
    assert json.loads(path.read_bytes())["store_key"]["kind"] == "tpm2"
    with open_keystore(uri) as store:
        assert store.unseal("psk") == b"sealed twice"
        assert store.key("operational").public_key().public_numbers() == public.public_numbers()
    with pytest.raises(UnlockFailed):
        open_keystore(f"file:{path}?tpm={new_swtpm('other').tcti}")
    with pytest.raises(KeystoreError) as caught:
        open_keystore(f"file:{path}", secret=b"a secret of sixteen bytes")
    assert caught.value.code == "keystore.needs_tpm"


def test_a_tpm2_keystore_takes_no_secret(swtpm: SwtpmProcess, tmp_path: Path) -> None:
    with pytest.raises(KeystoreError) as caught:
        open_keystore(f"tpm2:{swtpm.tcti}?dir={tmp_path}", secret=b"pin")
    assert caught.value.code == "keystore.unexpected_secret"


def test_an_unreachable_tpm_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError) as caught:
        open_keystore(f"tpm2:swtpm:host=127.0.0.1,port=1?dir={tmp_path}")
    assert caught.value.code == "keystore.unavailable"

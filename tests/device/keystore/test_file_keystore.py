"""The `file:` keystore: keys and secrets encrypted at rest, reopened with the device secret,
refused with another, tamper-evident, never in clear on disk."""

from __future__ import annotations

import json
import os
import secrets
import ssl
import stat
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devicetrust.device.keystore import (
    InvalidKeystoreUri,
    KeyExists,
    KeyNotFound,
    Keystore,
    KeystoreCorrupt,
    KeystoreError,
    UnlockFailed,
    open_keystore,
)
from tests.device.keystore.tls_peer import DevicePki, handshake, tls_server

SECRET = b"device-secret-0123456789abcdef"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "keystore.json"


def _open(path: Path, secret: bytes = SECRET) -> Keystore:
    return open_keystore(f"file:{path}", secret=secret)


def test_a_key_survives_a_reopen_and_signs(path: Path) -> None:
    with _open(path) as store:
        public = store.create_key("operational").public_key()
        assert store.kind == "file"
    with _open(path) as store:
        key = store.key("operational")
        assert not key.hardware
        assert store.labels() == ["operational"]
        assert key.public_key().public_numbers() == public.public_numbers()
        public.verify(key.sign(b"telemetry"), b"telemetry", ec.ECDSA(hashes.SHA256()))


def test_the_file_is_private_versioned_and_holds_nothing_in_clear(path: Path) -> None:
    sealed = secrets.token_bytes(32)
    with _open(path) as store:
        key = store.create_key("operational")
        store.seal("buffer-key", sealed)
        scalar = key.signer().private_numbers().private_value.to_bytes(32, "big")
        pkcs8 = key.signer().private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = path.read_bytes()
    document = json.loads(raw)
    assert document["format"] == "devicetrust-keystore/1"
    assert document["store_key"]["kind"] == "scrypt"
    for clear in (scalar, pkcs8, sealed, SECRET):
        assert clear not in raw
        assert clear.hex().encode() not in raw
    assert [p.name for p in path.parent.iterdir()] == ["keystore.json"]  # no temp file left


def test_another_secret_opens_nothing(path: Path) -> None:
    with _open(path) as store:
        store.create_key("operational")
    before = path.read_bytes()
    with pytest.raises(UnlockFailed) as caught:
        _open(path, b"another-secret-0123456789abcdef")
    assert SECRET.decode() not in str(caught.value)
    assert path.read_bytes() == before


@pytest.mark.parametrize("secret", [None, b"short"])
def test_a_missing_or_short_secret_is_refused(path: Path, secret: bytes | None) -> None:
    with pytest.raises(KeystoreError) as caught:
        open_keystore(f"file:{path}", secret=secret)
    assert caught.value.code == "keystore.needs_secret"
    assert not path.exists()


def test_seal_replace_and_unseal(path: Path) -> None:
    with _open(path) as store:
        store.seal("psk", bytearray(b"first"))
        store.seal("psk", b"second")
    with _open(path) as store:
        secret = store.unseal("psk")
        assert isinstance(secret, bytearray)
        assert secret == b"second"
        with pytest.raises(KeyNotFound):
            store.unseal("other")
        with pytest.raises(KeystoreError) as caught:
            store.seal("psk", bytes(129))
        assert caught.value.code == "keystore.bad_secret"
        assert store.unseal("psk") == b"second"


def test_labels_exist_once_and_delete(path: Path) -> None:
    with _open(path) as store:
        store.create_key("a")
        with pytest.raises(KeyExists):
            store.create_key("a")
        store.create_key("b")
        store.delete_key("a")
        with pytest.raises(KeyNotFound):
            store.key("a")
        with pytest.raises(KeyNotFound):
            store.delete_key("a")
        with pytest.raises(InvalidKeystoreUri):
            store.create_key("../escape")
    with _open(path) as store:
        assert store.labels() == ["b"]


def test_an_entry_moved_to_another_label_is_detected(path: Path) -> None:
    with _open(path) as store:
        store.seal("one", b"first secret")
        store.seal("two", b"second secret")
    document = json.loads(path.read_bytes())
    document["secrets"]["two"] = document["secrets"]["one"]
    path.write_text(json.dumps(document))
    with _open(path) as store, pytest.raises(KeystoreCorrupt):
        store.unseal("two")


def test_a_lowered_scrypt_cost_is_refused(path: Path) -> None:
    _open(path).close()
    document = json.loads(path.read_bytes())
    document["store_key"]["n"] = 2**10
    path.write_text(json.dumps(document))
    with pytest.raises(KeystoreCorrupt):
        _open(path)


@pytest.mark.parametrize("content", [b"not json", b'{"format": "devicetrust-keystore/9"}'])
def test_a_foreign_file_is_refused(path: Path, content: bytes) -> None:
    path.parent.mkdir()
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(KeystoreCorrupt):
        _open(path)


def test_a_file_others_can_read_is_refused(path: Path) -> None:
    _open(path).close()
    path.chmod(0o644)
    with pytest.raises(KeystoreError) as caught:
        _open(path)
    assert caught.value.code == "keystore.insecure_permissions"


def test_a_closed_keystore_refuses_work(path: Path) -> None:
    store = _open(path)
    store.close()
    with pytest.raises(KeystoreError) as caught:
        store.labels()
    assert caught.value.code == "keystore.closed"


def test_the_signer_signs_a_csr(path: Path) -> None:
    with _open(path) as store:
        key = store.create_key("operational")
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unit")])
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(name)
            .sign(key.signer(), hashes.SHA256())
        )
    assert csr.is_signature_valid
    assert csr.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]


def test_tls_client_authentication_leaves_no_key_file(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    pki = DevicePki()
    with _open(path) as store:
        key = store.create_key("operational")
        context = pki.client_context()
        key.load_into(context, pki.client_chain(key.public_key(), "unit-42"))
    assert list(scratch.iterdir()) == []
    with tls_server(pki) as served:
        assert handshake(context, served.port) == b"ok"
    assert served.client_subjects == ["unit-42"]


def test_tls_refuses_a_chain_for_another_key(path: Path) -> None:
    pki = DevicePki()
    with _open(path) as store:
        key = store.create_key("operational")
        other = ec.generate_private_key(ec.SECP256R1()).public_key()
        with pytest.raises(KeystoreError) as caught:
            key.load_into(pki.client_context(), pki.client_chain(other, "unit-42"))
    assert caught.value.code == "keystore.tls_load_failed"


def test_umask_does_not_widen_the_file(path: Path) -> None:
    old = os.umask(0)
    try:
        _open(path).close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_tls_peer_refuses_a_device_without_a_certificate() -> None:
    pki = DevicePki()
    with tls_server(pki) as served, pytest.raises((ssl.SSLError, OSError)):
        handshake(pki.client_context(), served.port)
    assert served.client_subjects == []


def test_a_failed_write_changes_nothing(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with _open(path) as store:
        store.create_key("kept")
        before = path.read_bytes()

        def disk_full(src: object, dst: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", disk_full)
        with pytest.raises(KeystoreError) as caught:
            store.create_key("lost")
        assert caught.value.code == "keystore.write_failed"
        monkeypatch.undo()
        assert store.labels() == ["kept"]
        with pytest.raises(KeyNotFound):
            store.key("lost")
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["keystore.json"]


def test_a_directory_in_place_of_the_file_is_a_clear_error(path: Path) -> None:
    path.mkdir(parents=True, mode=0o700)
    with pytest.raises(KeystoreError) as caught:
        _open(path)
    assert caught.value.code == "keystore.read_failed"

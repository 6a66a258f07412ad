"""The `memory:` keystore: the keystore interface in process memory only (simulators and
tests): nothing persisted, every open a new store, secrets copied out and wiped at close,
TLS through the same encrypted temporary file as `file:`."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from devicetrust.device.keystore import (
    InvalidKeystoreUri,
    KeyExists,
    KeyNotFound,
    Keystore,
    KeystoreError,
    open_keystore,
)
from tests.device.keystore.tls_peer import DevicePki, handshake, tls_server


def test_keys_sign_and_are_listed() -> None:
    with open_keystore("memory:arm-001") as store:
        assert isinstance(store, Keystore)
        assert store.kind == "memory"
        key = store.create_key("operational")
        assert not key.hardware
        signature = key.sign(b"hello")
        key.public_key().verify(signature, b"hello", ec.ECDSA(hashes.SHA256()))
        assert store.key("operational").public_key() == key.public_key()
        assert store.labels() == ["operational"]
        with pytest.raises(KeyExists):
            store.create_key("operational")
        store.delete_key("operational")
        assert store.labels() == []
        with pytest.raises(KeyNotFound):
            store.key("operational")


def test_every_open_is_a_new_empty_store() -> None:
    with open_keystore("memory:same") as first:
        first.create_key("k")
        first.seal("s", b"secret")
        with open_keystore("memory:same") as second:
            assert second.labels() == []
            with pytest.raises(KeyNotFound):
                second.unseal("s")


def test_sealed_secrets_are_copies_wiped_at_close() -> None:
    store = open_keystore("memory:")
    original = bytearray(b"group-key-0123456789")
    store.seal("provisioning-key", original)
    original[:] = bytes(len(original))  # the caller wipes its own copy
    opened = store.unseal("provisioning-key")
    assert opened == bytearray(b"group-key-0123456789")
    opened[:] = bytes(len(opened))
    assert store.unseal("provisioning-key") == bytearray(b"group-key-0123456789")
    store.seal("provisioning-key", b"replaced")
    assert store.unseal("provisioning-key") == bytearray(b"replaced")
    store.close()
    with pytest.raises(KeystoreError) as caught:
        store.unseal("provisioning-key")
    assert caught.value.code == "keystore.closed"


def test_bad_input_is_refused() -> None:
    with pytest.raises(KeystoreError) as caught:
        open_keystore("memory:x", secret=b"0123456789abcdef")
    assert caught.value.code == "keystore.unexpected_secret"
    with pytest.raises(InvalidKeystoreUri):
        open_keystore("memory:x?persist=1")
    with open_keystore("memory:") as store:
        with pytest.raises(InvalidKeystoreUri):
            store.create_key("../escape")
        with pytest.raises(KeystoreError) as caught:
            store.seal("big", bytes(129))
        assert caught.value.code == "keystore.bad_secret"
        with pytest.raises(KeyNotFound):
            store.delete_secret("absent")


def test_tls_client_authentication_leaves_nothing_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    pki = DevicePki()
    with open_keystore("memory:unit-42") as store:
        key = store.create_key("operational")
        context = pki.client_context()
        key.load_into(context, pki.client_chain(key.public_key(), "unit-42"))
    assert list(scratch.iterdir()) == []
    with tls_server(pki) as served:
        assert handshake(context, served.port) == b"ok"
    assert served.client_subjects == ["unit-42"]


def test_the_documented_example_runs() -> None:
    import re
    import subprocess
    import sys

    doc = Path(__file__).resolve().parents[3] / "docs" / "device-keystores.md"
    section = doc.read_text().split("### `memory:`", 1)[1].split("\n## ", 1)[0]
    block = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[0]
    out = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "memory ['operational'] True"

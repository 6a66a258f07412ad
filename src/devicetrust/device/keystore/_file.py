"""The `file:` keystore: P-256 keys and small secrets in one JSON file, each encrypted with
AES-256-GCM under a store key (from the device secret with scrypt, or sealed by a TPM).

For devices without a TPM or token. What is on disk: labels, public keys and ciphertexts
(`_file_format`); what is in memory: the store key (a bytearray wiped at `close`) and the
keys in use. One process owns the file at a time; every change rewrites it atomically.
"""

from __future__ import annotations

import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from devicetrust.device.keystore import _file_format as fmt
from devicetrust.device.keystore._atomic import private_directory
from devicetrust.device.keystore._base import (
    KeyExists,
    KeyNotFound,
    KeystoreCorrupt,
    KeystoreError,
)
from devicetrust.device.keystore._closing import ClosingStore
from devicetrust.device.keystore._labels import check_label, check_secret, wipe
from devicetrust.device.keystore._software_key import SoftwareKey
from devicetrust.device.keystore._store_key import new_store_key, open_store_key

_KEY, _SECRET = "key", "secret"


class FileKeystore(ClosingStore):
    """Opens (or creates) the keystore file at `path`. Use as a context manager or `close()`."""

    def __init__(
        self, path: Path, *, secret: bytes | bytearray | None = None, tpm: str | None = None
    ) -> None:
        self._path = path
        self._lock = threading.Lock()
        if path.exists():
            self._document = fmt.read_document(path)
            self._store_key = open_store_key(self._document["store_key"], secret, tpm)
            self._aead = AESGCM(bytes(self._store_key))
            try:
                fmt.verify_store_key(self._document, self._aead)
            except KeystoreError:
                wipe(self._store_key)
                raise
        else:
            private_directory(path.parent)
            self._store_key, header = new_store_key(secret, tpm)
            self._aead = AESGCM(bytes(self._store_key))
            self._document = fmt.new_document(header, self._aead)
            fmt.write_document(path, self._document)
        self._keys: dict[str, SoftwareKey] = {}
        self._closed = False

    @property
    def kind(self) -> str:
        return "file"

    @property
    def path(self) -> Path:
        return self._path

    @property
    def tpm_sealed(self) -> bool:
        """True when the store key is sealed by a TPM rather than derived from a secret."""
        return bool(self._document["store_key"].get("kind") == "tpm2")

    def create_key(self, label: str) -> SoftwareKey:
        check_label(label)
        with self._lock:
            self._open()
            if label in self._document["keys"]:
                raise KeyExists(f"a key labelled {label!r} exists")
            private_key = ec.generate_private_key(ec.SECP256R1())
            der = bytearray(
                private_key.private_bytes(
                    serialization.Encoding.DER,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            try:
                entry = fmt.encrypt_entry(self._aead, _KEY, label, der)
            finally:
                wipe(der)
            entry["public"] = fmt.b64(
                private_key.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
            self._save("keys", label, entry)
            key = self._keys[label] = SoftwareKey(label, private_key)
            return key

    def key(self, label: str) -> SoftwareKey:
        check_label(label)
        with self._lock:
            self._open()
            if label in self._keys:
                return self._keys[label]
            entry = self._document["keys"].get(label)
            if entry is None:
                raise KeyNotFound(f"no key labelled {label!r}")
            der = fmt.decrypt_entry(self._aead, _KEY, label, entry)
            try:
                private_key = serialization.load_der_private_key(bytes(der), password=None)
            except ValueError as exc:
                raise KeystoreCorrupt(f"the key {label!r} is not a valid private key") from exc
            finally:
                wipe(der)
            if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
                private_key.curve, ec.SECP256R1
            ):
                raise KeystoreCorrupt(f"the key {label!r} is not a P-256 key")
            key = self._keys[label] = SoftwareKey(label, private_key)
            return key

    def delete_key(self, label: str) -> None:
        check_label(label)
        with self._lock:
            self._open()
            if label not in self._document["keys"]:
                raise KeyNotFound(f"no key labelled {label!r}")
            self._save("keys", label, None)
            self._keys.pop(label, None)

    def labels(self) -> list[str]:
        with self._lock:
            self._open()
            return sorted(self._document["keys"])

    def seal(self, label: str, secret: bytes | bytearray) -> None:
        check_label(label)
        check_secret(secret)
        with self._lock:
            self._open()
            self._save("secrets", label, fmt.encrypt_entry(self._aead, _SECRET, label, secret))

    def unseal(self, label: str) -> bytearray:
        check_label(label)
        with self._lock:
            self._open()
            entry = self._document["secrets"].get(label)
            if entry is None:
                raise KeyNotFound(f"no secret labelled {label!r}")
            return fmt.decrypt_entry(self._aead, _SECRET, label, entry)

    def delete_secret(self, label: str) -> None:
        check_label(label)
        with self._lock:
            self._open()
            if label not in self._document["secrets"]:
                raise KeyNotFound(f"no secret labelled {label!r}")
            self._save("secrets", label, None)

    def _release(self) -> None:
        wipe(self._store_key)
        self._keys.clear()

    def _save(self, section: str, label: str, entry: dict[str, str] | None) -> None:
        """Write the document with `entry` set (or removed when None) under `section`; the
        in-memory document changes only once the file has."""
        entries = dict(self._document[section])
        if entry is None:
            del entries[label]
        else:
            entries[label] = entry
        document = {**self._document, section: entries}
        fmt.write_document(self._path, document)
        self._document = document

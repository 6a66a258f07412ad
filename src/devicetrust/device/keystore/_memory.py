"""The `memory:` keystore: P-256 keys and small sealed secrets in this process's memory only,
for simulators and tests (thousands of devices in one process, no scrypt, no file).

It must never persist anything: nothing is written to disk except the instant, encrypted
PKCS#8 file `SoftwareKey.load_into` hands to OpenSSL (the `file:` backend's code). Sealed
secrets are kept as bytearray copies and wiped at `delete_secret`, on replacement and at
`close`. Everything is lost when the store is closed or the process ends: never use it on a
real device.
"""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives.asymmetric import ec

from devicetrust.device.keystore._base import KeyExists, KeyNotFound
from devicetrust.device.keystore._closing import ClosingStore
from devicetrust.device.keystore._labels import check_label, check_secret, wipe
from devicetrust.device.keystore._software_key import SoftwareKey


class MemoryKeystore(ClosingStore):
    """An empty keystore named `name` (a tag for messages; two stores never share content)."""

    def __init__(self, name: str = "") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._keys: dict[str, SoftwareKey] = {}
        self._secrets: dict[str, bytearray] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryKeystore(name={self._name!r})"

    @property
    def kind(self) -> str:
        return "memory"

    @property
    def name(self) -> str:
        return self._name

    def create_key(self, label: str) -> SoftwareKey:
        check_label(label)
        with self._lock:
            self._open()
            if label in self._keys:
                raise KeyExists(f"a key labelled {label!r} exists")
            key = self._keys[label] = SoftwareKey(label, ec.generate_private_key(ec.SECP256R1()))
            return key

    def key(self, label: str) -> SoftwareKey:
        check_label(label)
        with self._lock:
            self._open()
            try:
                return self._keys[label]
            except KeyError:
                raise KeyNotFound(f"no key labelled {label!r}") from None

    def delete_key(self, label: str) -> None:
        check_label(label)
        with self._lock:
            self._open()
            if self._keys.pop(label, None) is None:
                raise KeyNotFound(f"no key labelled {label!r}")

    def labels(self) -> list[str]:
        with self._lock:
            self._open()
            return sorted(self._keys)

    def seal(self, label: str, secret: bytes | bytearray) -> None:
        check_label(label)
        check_secret(secret)
        with self._lock:
            self._open()
            previous = self._secrets.get(label)
            self._secrets[label] = bytearray(secret)
            if previous is not None:
                wipe(previous)

    def unseal(self, label: str) -> bytearray:
        check_label(label)
        with self._lock:
            self._open()
            secret = self._secrets.get(label)
            if secret is None:
                raise KeyNotFound(f"no secret labelled {label!r}")
            return bytearray(secret)  # a copy: the caller wipes it, ours stays

    def delete_secret(self, label: str) -> None:
        check_label(label)
        with self._lock:
            self._open()
            secret = self._secrets.pop(label, None)
            if secret is None:
                raise KeyNotFound(f"no secret labelled {label!r}")
            wipe(secret)

    def _release(self) -> None:
        for secret in self._secrets.values():
            wipe(secret)
        self._secrets.clear()
        self._keys.clear()

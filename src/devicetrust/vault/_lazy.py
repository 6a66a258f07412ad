"""`Sealer`: what a service needs of a vault; `LazyVault`: a vault loaded on first use.

Services that only sometimes touch secrets (listing webhooks needs no key, adding one does)
take a `Sealer`, so a missing KEK fails the operations that need it and no others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from devicetrust.vault._vault import Vault


class Sealer(Protocol):
    def seal(self, plaintext: bytes | bytearray, *, aad: bytes) -> bytes: ...

    def open(self, sealed: bytes, *, aad: bytes) -> bytearray: ...


class LazyVault:
    """Calls `load` at the first seal/open (it may raise, e.g. `config.kek_missing`)."""

    def __init__(self, load: Callable[[], Vault]) -> None:
        self._load = load
        self._vault: Vault | None = None

    def _get(self) -> Vault:
        if self._vault is None:
            self._vault = self._load()
        return self._vault

    @property
    def loaded(self) -> bool:
        return self._vault is not None

    def seal(self, plaintext: bytes | bytearray, *, aad: bytes) -> bytes:
        return self._get().seal(plaintext, aad=aad)

    def open(self, sealed: bytes, *, aad: bytes) -> bytearray:
        return self._get().open(sealed, aad=aad)

    def close(self) -> None:
        if self._vault is not None:
            self._vault.close()

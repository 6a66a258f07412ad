"""The open/closed life of every keystore: `close()` (idempotent, under the store's lock),
use as a context manager, and `_open()` refusing work once closed."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self

from devicetrust.device.keystore._base import KeystoreError


class ClosingStore:
    """Mixin: the store sets `_lock` and `_closed = False` and gives `_release()`, which
    frees what it holds (wipes keys, closes the TPM or token session) exactly once."""

    _lock: threading.Lock | threading.RLock
    _closed: bool

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._release()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _open(self) -> None:
        if self._closed:
            raise KeystoreError("the keystore is closed", code="keystore.closed")

    def _release(self) -> None:
        raise NotImplementedError

"""The TPM package's errors seen through the keystore interface: callers of a `Keystore`
catch `KeystoreError` whatever the backend. Keeps the TSS response code, never a blob."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from devicetrust.device.keystore._base import KeystoreError, KeystoreUnavailable, UnlockFailed
from devicetrust.device.tpm._errors import TpmOperationFailed, TpmUnavailable, UnsealFailed


@contextmanager
def tpm_errors_as_keystore() -> Iterator[None]:
    try:
        yield
    except TpmUnavailable as exc:
        raise KeystoreUnavailable(exc.message) from exc
    except UnsealFailed as exc:
        raise UnlockFailed(exc.message) from exc
    except TpmOperationFailed as exc:
        raise KeystoreError(exc.message, code="keystore.tpm_failed") from exc

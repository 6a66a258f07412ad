"""`open_keystore`: the URI's scheme picks the backend (securesystemslib's
SIGNER_FOR_URI_SCHEME pattern); a backend's library is imported only when its scheme is used.
"""

from __future__ import annotations

from devicetrust.device.keystore._base import Keystore, KeystoreError
from devicetrust.device.keystore._uri import FileUri, MemoryUri, Pkcs11Uri, parse_keystore_uri


def open_keystore(uri: str, *, secret: bytes | bytearray | None = None) -> Keystore:
    """Open the keystore `uri` names (creating a `file:` keystore on first use).

    `secret` is the device secret of a `file:` keystore (at least 16 bytes; not with
    `?tpm=`), or the PIN of a `pkcs11:` token (unless the URI names a `pin-source`); a
    `tpm2:` or `memory:` keystore takes none. The caller keeps and wipes `secret`.

    `memory:[<name>]` is a new, empty store in process memory, never persisted (simulators
    and tests only)."""
    target = parse_keystore_uri(uri)
    if isinstance(target, MemoryUri):
        if secret is not None:
            raise KeystoreError("a memory: keystore takes no secret",
                                code="keystore.unexpected_secret")
        from devicetrust.device.keystore._memory import MemoryKeystore

        return MemoryKeystore(target.name)
    if isinstance(target, FileUri):
        from devicetrust.device.keystore._file import FileKeystore

        return FileKeystore(target.path, secret=secret, tpm=target.tpm)
    if isinstance(target, Pkcs11Uri):
        from devicetrust.device.keystore._pkcs11 import Pkcs11Keystore

        return Pkcs11Keystore(target, secret=secret)
    if secret is not None:
        raise KeystoreError("a tpm2: keystore takes no secret", code="keystore.unexpected_secret")
    from devicetrust.device.keystore._tpm2 import Tpm2Keystore

    return Tpm2Keystore(target)

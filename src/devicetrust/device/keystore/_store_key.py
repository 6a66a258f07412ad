"""The `file:` keystore's store key: 32 random-looking bytes that encrypt every entry, either
derived from the device secret with scrypt (RFC 7914) and a random salt, or drawn from the
CSPRNG and sealed by the device's TPM (then only that TPM can open the file).

Returns the key in a bytearray the caller wipes; never stores it, logs it or puts it in an
error. Refuses stored scrypt costs below the floor, whatever the file says.
"""

from __future__ import annotations

import secrets
from typing import Any

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from devicetrust.device.keystore._base import KeystoreCorrupt, KeystoreError
from devicetrust.device.keystore._file_format import b64, unb64

KEY_SIZE = 32
SALT_SIZE = 16
MIN_SECRET_SIZE = 16
# scrypt cost: 2**15 x 8 x 128 B = 32 MiB and ~0.1 s once per open, affordable on a
# Raspberry-class device; the floor keeps a tampered file from lowering it.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_MIN_N, _MAX_N = 2**14, 2**20


def new_store_key(
    secret: bytes | bytearray | None, tpm: str | None
) -> tuple[bytearray, dict[str, Any]]:
    """A fresh store key and the public header that reopens it."""
    if tpm is not None:
        _no_secret(secret)
        key = bytearray(secrets.token_bytes(KEY_SIZE))
        sealed = _tpm_seal(tpm, key)
        return key, {"kind": "tpm2", "public": b64(sealed[0]), "private": b64(sealed[1])}
    salt = secrets.token_bytes(SALT_SIZE)
    header = {"kind": "scrypt", "salt": b64(salt), "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P}
    return _derive(_need_secret(secret), salt, SCRYPT_N), header


def open_store_key(
    header: dict[str, Any], secret: bytes | bytearray | None, tpm: str | None
) -> bytearray:
    """The store key of an existing file, from its header and the secret or the TPM."""
    kind = header.get("kind")
    if kind == "tpm2":
        if tpm is None:
            raise KeystoreError(
                "this keystore's key is sealed by a TPM: open it with ?tpm=<tcti>",
                code="keystore.needs_tpm",
            )
        _no_secret(secret)
        return _tpm_unseal(tpm, unb64(header.get("public")), unb64(header.get("private")))
    if kind != "scrypt":
        raise KeystoreCorrupt("the keystore file names an unknown store-key kind")
    if tpm is not None:
        raise KeystoreError(
            "this keystore's key comes from a device secret, not a TPM",
            code="keystore.needs_secret",
        )
    n, r, p = header.get("n"), header.get("r"), header.get("p")
    if not isinstance(n, int) or n < _MIN_N or n > _MAX_N or n & (n - 1) or (r, p) != (8, 1):
        raise KeystoreCorrupt("the keystore file's scrypt cost is out of bounds")
    salt = unb64(header.get("salt"))
    if len(salt) < SALT_SIZE:
        raise KeystoreCorrupt("the keystore file's scrypt salt is too short")
    return _derive(_need_secret(secret), salt, n)


def _derive(secret: bytes | bytearray, salt: bytes, n: int) -> bytearray:
    kdf = Scrypt(salt=salt, length=KEY_SIZE, n=n, r=SCRYPT_R, p=SCRYPT_P)
    return bytearray(kdf.derive(bytes(secret)))


def _need_secret(secret: bytes | bytearray | None) -> bytes | bytearray:
    if not isinstance(secret, bytes | bytearray) or len(secret) < MIN_SECRET_SIZE:
        raise KeystoreError(
            f"a file: keystore needs a device secret of at least {MIN_SECRET_SIZE} bytes "
            "(or ?tpm=<tcti> to seal its key in a TPM)",
            code="keystore.needs_secret",
        )
    return secret


def _no_secret(secret: bytes | bytearray | None) -> None:
    if secret is not None:
        raise KeystoreError(
            "a TPM-sealed file: keystore takes no device secret", code="keystore.needs_tpm"
        )


def _tpm_seal(tcti: str, key: bytearray) -> tuple[bytes, bytes]:
    from devicetrust.device.keystore._tpm_errors import tpm_errors_as_keystore
    from devicetrust.device.tpm import TpmKeystore

    with tpm_errors_as_keystore(), TpmKeystore(tcti) as tpm:
        sealed = tpm.seal(key)
    return sealed.public, sealed.private


def _tpm_unseal(tcti: str, public: bytes, private: bytes) -> bytearray:
    from devicetrust.device.keystore._tpm_errors import tpm_errors_as_keystore
    from devicetrust.device.tpm._keystore import SealedObject, TpmKeystore

    with tpm_errors_as_keystore(), TpmKeystore(tcti) as tpm:
        return tpm.unseal(SealedObject(public=public, private=private))

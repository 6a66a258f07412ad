"""The `file:` keystore's on-disk format, `devicetrust-keystore/1`, and its atomic writes.

    {"format": "devicetrust-keystore/1",
     "store_key": {"kind": "scrypt", "salt": b64, "n": 32768, "r": 8, "p": 1}
                | {"kind": "tpm2", "public": b64, "private": b64},   # sealed by the TPM
     "check": b64,                       # AES-256-GCM tag over nothing, AAD = format + header
     "keys": {label: {"public": b64 SPKI DER, "nonce": b64, "ciphertext": b64 PKCS#8 DER}},
     "secrets": {label: {"nonce": b64, "ciphertext": b64}}}

Every ciphertext is AES-256-GCM under the store key with a fresh 96-bit nonce and the AAD
`format NUL kind NUL label`, so an entry cannot be moved to another label or kind unnoticed.
Never writes anything in clear but public keys and labels; the file is created 0600 and
replaced atomically (temp file, fsync, rename, fsync of the directory).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from devicetrust.device.keystore._atomic import write_private
from devicetrust.device.keystore._base import KeystoreCorrupt, KeystoreError, UnlockFailed

FORMAT = "devicetrust-keystore/1"
NONCE_SIZE = 12

Document = dict[str, Any]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(value: object) -> bytes:
    if not isinstance(value, str):
        raise KeystoreCorrupt("the keystore file has a malformed field")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise KeystoreCorrupt("the keystore file has a malformed field") from exc


def new_document(store_key_header: dict[str, Any], aead: AESGCM) -> Document:
    return {
        "format": FORMAT,
        "store_key": store_key_header,
        "check": b64(_check(aead, store_key_header)),
        "keys": {},
        "secrets": {},
    }


def verify_store_key(document: Document, aead: AESGCM) -> None:
    """`UnlockFailed` unless `aead` holds the store key this document was written with."""
    tag = unb64(document.get("check"))
    nonce, sealed = tag[:NONCE_SIZE], tag[NONCE_SIZE:]
    try:
        aead.decrypt(nonce, sealed, _check_aad(document["store_key"]))
    except InvalidTag as exc:
        raise UnlockFailed("the device secret does not open this keystore") from exc


def encrypt_entry(
    aead: AESGCM, kind: str, label: str, plaintext: bytes | bytearray
) -> dict[str, str]:
    nonce = secrets.token_bytes(NONCE_SIZE)
    ciphertext = aead.encrypt(nonce, bytes(plaintext), _aad(kind, label))
    return {"nonce": b64(nonce), "ciphertext": b64(ciphertext)}


def decrypt_entry(aead: AESGCM, kind: str, label: str, entry: object) -> bytearray:
    if not isinstance(entry, dict):
        raise KeystoreCorrupt("the keystore file has a malformed entry")
    try:
        return bytearray(
            aead.decrypt(
                unb64(entry.get("nonce")), unb64(entry.get("ciphertext")), _aad(kind, label)
            )
        )
    except InvalidTag as exc:
        raise KeystoreCorrupt(f"the {kind} entry {label!r} was altered") from exc


def read_document(path: Path) -> Document:
    """The parsed document; refuses a file others can read or write, or of another format."""
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            raise KeystoreError(
                f"{path} is readable or writable by others (chmod 600 it)",
                code="keystore.insecure_permissions",
            )
        document = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KeystoreCorrupt(f"{path} is not a keystore file") from exc
    except OSError as exc:
        raise KeystoreError(
            f"cannot read {path}: {exc.strerror}", code="keystore.read_failed"
        ) from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise KeystoreCorrupt(f"{path} is not a {FORMAT} file")
    for section in ("keys", "secrets", "store_key"):
        if not isinstance(document.get(section), dict):
            raise KeystoreCorrupt(f"{path} has no valid {section!r} section")
    return document


def write_document(path: Path, document: Document) -> None:
    write_private(path, json.dumps(document, indent=1, sort_keys=True).encode("utf-8"))


def _aad(kind: str, label: str) -> bytes:
    return f"{FORMAT}\0{kind}\0{label}".encode()


def _check_aad(header: object) -> bytes:
    return f"{FORMAT}\0check\0".encode() + json.dumps(header, sort_keys=True).encode()


def _check(aead: AESGCM, header: dict[str, Any]) -> bytes:
    nonce = secrets.token_bytes(NONCE_SIZE)
    return nonce + aead.encrypt(nonce, b"", _check_aad(header))

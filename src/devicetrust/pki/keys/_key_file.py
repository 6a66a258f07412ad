"""The on-disk form of a `file:` CA key: an encrypted PKCS#8 PEM file plus, beside it, a JSON
protection record saying how its password is recovered.

    root-ca.key.pem                    -----BEGIN ENCRYPTED PRIVATE KEY----- (PKCS#8, RFC 5958)
    root-ca.key.pem.protection.json    {"format": "devicetrust-ca-key-protection/1",
                                        "algorithm": "ecdsa-p256", "key_id": "<32 hex>",
                                        "public_key_sha256": "<64 hex>",
                                        "password": {"source": "passphrase", "salt": "<b64>",
                                                     "scrypt_n": 131072, "scrypt_r": 8,
                                                     "scrypt_p": 1}
                                              or  {"source": "kek", "kek_id": "<8 hex>",
                                                   "sealed": "<b64>"}}

Both files are written 0600, atomically, and never over an existing file. Never writes a
private key or password in clear; never reads a record more leniently than this layout
(unknown fields, missing fields or wrong types are refused).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from devicetrust.domain.errors import DeviceTrustError
from devicetrust.pki.keys._algorithm import KeyAlgorithm
from devicetrust.pki.keys._errors import KeyExists, KeyFileInvalid, KeyNotProtected
from devicetrust.pki.keys._password import PasswordRecord, ScryptParameters, SealedPassword

FORMAT = "devicetrust-ca-key-protection/1"
PROTECTION_SUFFIX = ".protection.json"
FILE_MODE = 0o600
MAX_FILE_SIZE = 64 * 1024  # an RSA-3072 PKCS#8 PEM is ~2.5 KiB; refuse anything absurd

_ENCRYPTED_LABEL = "ENCRYPTED PRIVATE KEY"
_CLEAR_LABELS = frozenset(
    {"PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY", "DSA PRIVATE KEY", "OPENSSH PRIVATE KEY"}
)
_BEGIN_RE = re.compile(rb"^-----BEGIN ([A-Z0-9 ]+)-----\s*$", re.MULTILINE)
_HEX_RE = re.compile(r"[0-9a-f]+")
_KEY_ID_SIZE = 16
_BINDING_LABEL = b"devicetrust/pki/key-file/v1\x00"


@dataclass(frozen=True, slots=True)
class ProtectionRecord:
    """What is stored beside an encrypted key file (all of it public)."""

    algorithm: KeyAlgorithm
    key_id: str
    public_key_sha256: str
    password: PasswordRecord

    @staticmethod
    def new_key_id() -> str:
        return secrets.token_hex(_KEY_ID_SIZE)

    def binding(self) -> bytes:
        return key_binding(self.key_id, self.algorithm)

    def to_json(self) -> bytes:
        password: dict[str, object]
        if isinstance(self.password, ScryptParameters):
            password = {
                "source": "passphrase",
                "salt": base64.b64encode(self.password.salt).decode("ascii"),
                "scrypt_n": self.password.n,
                "scrypt_r": self.password.r,
                "scrypt_p": self.password.p,
            }
        else:
            password = {
                "source": "kek",
                "kek_id": self.password.kek_id,
                "sealed": base64.b64encode(self.password.sealed).decode("ascii"),
            }
        document = {
            "format": FORMAT,
            "algorithm": self.algorithm.value,
            "key_id": self.key_id,
            "public_key_sha256": self.public_key_sha256,
            "password": password,
        }
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> ProtectionRecord:
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise KeyFileInvalid("the key protection record is not JSON") from exc
        top = _fields(document, {"format", "algorithm", "key_id", "public_key_sha256", "password"})
        if top["format"] != FORMAT:
            raise KeyFileInvalid("unknown key protection record format", format=top["format"])
        algorithm = KeyAlgorithm.parse(_text(top["algorithm"], "algorithm"))
        key_id = _hex(top["key_id"], "key_id", 2 * _KEY_ID_SIZE)
        public_key_sha256 = _hex(top["public_key_sha256"], "public_key_sha256", 64)
        source = top["password"].get("source") if isinstance(top["password"], dict) else None
        record: PasswordRecord
        if source == "passphrase":
            fields = _fields(
                top["password"], {"source", "salt", "scrypt_n", "scrypt_r", "scrypt_p"}
            )
            record = ScryptParameters(
                salt=_b64(fields["salt"], "salt"),
                n=_integer(fields["scrypt_n"], "scrypt_n"),
                r=_integer(fields["scrypt_r"], "scrypt_r"),
                p=_integer(fields["scrypt_p"], "scrypt_p"),
            )
            record.check()
        elif source == "kek":
            fields = _fields(top["password"], {"source", "kek_id", "sealed"})
            record = SealedPassword(
                kek_id=_hex(fields["kek_id"], "kek_id", None),
                sealed=_b64(fields["sealed"], "sealed"),
            )
        else:
            raise KeyFileInvalid("the password source is 'passphrase' or 'kek'")
        return cls(algorithm, key_id, public_key_sha256, record)


def key_binding(key_id: str, algorithm: KeyAlgorithm) -> bytes:
    """Names a key for its password source (the AAD of a KEK-sealed password), so a sealed
    password copied into another key's record does not open."""
    return _BINDING_LABEL + key_id.encode("ascii") + b"\x00" + algorithm.value.encode("ascii")


def protection_path(key_path: Path) -> Path:
    return key_path.with_name(key_path.name + PROTECTION_SUFFIX)


def check_encrypted_pem(data: bytes) -> None:
    """Accept exactly one PEM block, labelled ENCRYPTED PRIVATE KEY (PKCS#8 EncryptedPrivateKey
    Info, RFC 5958 §3). A clear key is refused as unprotected; legacy OpenSSL PEM encryption
    ("Proc-Type: 4,ENCRYPTED", MD5-based key derivation) and anything else as invalid."""
    labels = [m.decode("ascii") for m in _BEGIN_RE.findall(data)]
    clear = [label for label in labels if label in _CLEAR_LABELS]
    if clear and b"Proc-Type: 4,ENCRYPTED" not in data:
        raise KeyNotProtected(
            "the key file holds an unencrypted private key; CA keys are only accepted "
            "encrypted (PKCS#8 with a passphrase or the platform KEK)",
            pem_label=clear[0],
        )
    if clear:
        raise KeyFileInvalid(
            "legacy PEM encryption is not accepted; the key file must be encrypted PKCS#8",
            pem_label=clear[0],
        )
    if labels != [_ENCRYPTED_LABEL]:
        raise KeyFileInvalid(
            "the key file must hold exactly one 'ENCRYPTED PRIVATE KEY' PEM block",
            pem_labels=labels,
        )


def read_small_file(path: Path, what: str, *, if_missing: DeviceTrustError) -> bytes:
    """Read a key or record file, refusing symlinks and absurd sizes; a missing file raises
    `if_missing` (its meaning depends on which file it is)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError as exc:
        raise if_missing from exc
    except OSError as exc:
        raise KeyFileInvalid(f"cannot read the {what}: {exc.strerror}", path=str(path)) from exc
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_FILE_SIZE + 1)
    if len(data) > MAX_FILE_SIZE:
        raise KeyFileInvalid(f"the {what} is larger than {MAX_FILE_SIZE} bytes", path=str(path))
    return data


def write_new_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` with mode 0600, all or nothing, never replacing a file: the data
    goes to a temporary file that is fsync'd, then hard-linked to `path` (link(2) fails if
    `path` exists, where rename(2) would silently replace a CA key)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    fd = os.open(temporary, flags, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)  # whatever the umask did
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError as exc:
            raise KeyExists("a key file already exists there", path=str(path)) from exc
    finally:
        temporary.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _fields(value: object, names: set[str]) -> dict[str, object]:
    if not isinstance(value, dict) or set(value) != names:
        raise KeyFileInvalid(
            "the key protection record has missing or unknown fields", expected=sorted(names)
        )
    return value


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise KeyFileInvalid(f"{name} must be a string")
    return value


def _integer(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise KeyFileInvalid(f"{name} must be an integer")
    return value


def _hex(value: object, name: str, length: int | None) -> str:
    text = _text(value, name)
    if not _HEX_RE.fullmatch(text) or (length is not None and len(text) != length):
        raise KeyFileInvalid(f"{name} must be lowercase hex" + (f" of {length}" if length else ""))
    return text


def _b64(value: object, name: str) -> bytes:
    try:
        return base64.b64decode(_text(value, name), validate=True)
    except binascii.Error as exc:
        raise KeyFileInvalid(f"{name} must be base64") from exc

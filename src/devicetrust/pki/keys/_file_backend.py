"""The `file:` backend: a CA key in an encrypted PKCS#8 file, unlocked into this process only.

`generate` creates the key in this process and writes nothing but the encrypted file and its
protection record (`_key_file`); `load` refuses a clear key file, a record that does not match
the key, and a wrong passphrase or KEK (`pki.key_unlock_failed`). Never writes the private key
or its password in clear, never overwrites an existing key file, and never lets the key object
out of `FileCaKey`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding
from cryptography.x509 import ocsp

from devicetrust.pki.keys._algorithm import CaPrivateKey, CaPublicKey, KeyAlgorithm
from devicetrust.pki.keys._ca_key import KeyHandle
from devicetrust.pki.keys._errors import (
    InvalidKeyUri,
    KeyClosed,
    KeyExists,
    KeyFileInvalid,
    KeyNotFound,
    KeyNotProtected,
    KeyUnlockFailed,
)
from devicetrust.pki.keys._key_file import (
    ProtectionRecord,
    check_encrypted_pem,
    key_binding,
    protection_path,
    read_small_file,
    write_new_file,
)
from devicetrust.pki.keys._password import KeyPassword

SCHEME = "file"


def path_from_uri(uri: str) -> Path:
    """`file:/abs/path`, `file:///abs/path`, `file://localhost/abs/path` (RFC 8089) or
    `file:relative/path`; no host, query or fragment."""
    parts = urlsplit(uri)
    if parts.scheme != SCHEME:
        raise InvalidKeyUri("not a file: key URI", uri=uri)
    if parts.netloc not in ("", "localhost"):
        raise InvalidKeyUri("file: key URIs name a local path (no host)", uri=uri)
    if parts.query or parts.fragment:
        # Not echoed: a query is where someone might have put a password.
        raise InvalidKeyUri("file: key URIs take no query or fragment")
    path = unquote(parts.path, errors="strict")
    if not path or "\x00" in path:
        raise InvalidKeyUri("file: key URI without a usable path", uri=uri)
    return Path(path)


def _public_key_sha256(public_key: CaPublicKey) -> str:
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


class FileCaKey(KeyHandle):
    """A CA key unlocked from an encrypted file. Signs with `cryptography` directly."""

    __slots__ = ("_algorithm", "_private_key", "_public_key", "_uri")

    def __init__(self, uri: str, algorithm: KeyAlgorithm, private_key: CaPrivateKey) -> None:
        self._uri = uri
        self._algorithm = algorithm
        self._private_key: CaPrivateKey | None = private_key
        self._public_key: CaPublicKey = private_key.public_key()

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def algorithm(self) -> KeyAlgorithm:
        return self._algorithm

    def public_key(self) -> CaPublicKey:
        return self._public_key

    def sign_certificate(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        return builder.sign(self._key(), self._algorithm.hash_algorithm)

    def sign_crl(
        self, builder: x509.CertificateRevocationListBuilder
    ) -> x509.CertificateRevocationList:
        return builder.sign(self._key(), self._algorithm.hash_algorithm)

    def sign_ocsp(self, builder: ocsp.OCSPResponseBuilder) -> ocsp.OCSPResponse:
        return builder.sign(self._key(), self._algorithm.hash_algorithm)

    def sign_bytes(self, data: bytes) -> bytes:
        key = self._key()
        hash_algorithm = self._algorithm.hash_algorithm
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(data)
        if hash_algorithm is None:  # unreachable: only Ed25519 signs without a hash
            raise KeyFileInvalid("no hash for this key algorithm")
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(hash_algorithm))
        return key.sign(data, padding.PKCS1v15(), hash_algorithm)

    def close(self) -> None:
        """Drop the key object. `cryptography` keeps the key in OpenSSL memory that this
        process cannot zero from Python; OpenSSL clears it when the object is freed."""
        self._private_key = None

    def __repr__(self) -> str:
        state = "closed" if self._private_key is None else self._algorithm.value
        return f"<FileCaKey {self._uri} {state}>"

    def _key(self) -> CaPrivateKey:
        if self._private_key is None:
            raise KeyClosed("the CA key is closed", uri=self._uri)
        return self._private_key


def generate(path: Path, algorithm: KeyAlgorithm, password: KeyPassword) -> FileCaKey:
    """A new key, created in this process, written only encrypted to `path`."""
    return store(path, algorithm.generate_private_key(), password)


def store(path: Path, private_key: CaPrivateKey, password: KeyPassword) -> FileCaKey:
    """Encrypt an existing key (e.g. an external CA's, on import) to `path`."""
    algorithm = KeyAlgorithm.of_public_key(private_key.public_key())
    path = path.absolute()
    record_path = protection_path(path)
    for existing in (path, record_path):
        if existing.exists() or existing.is_symlink():
            raise KeyExists("a key file already exists there", path=str(existing))
    key_id = ProtectionRecord.new_key_id()
    public_sha256 = _public_key_sha256(private_key.public_key())
    secret, password_record = password.new_password(key_binding(key_id, algorithm))
    try:
        # cryptography's encryption API takes immutable bytes: this copy cannot be zeroed.
        encrypted = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(bytes(secret)),
        )
    finally:
        secret[:] = bytes(len(secret))
    record = ProtectionRecord(algorithm, key_id, public_sha256, password_record)
    # The record first: a key file never exists without the means to open it. If the key
    # file cannot be created, the fresh record is removed again.
    write_new_file(record_path, record.to_json())
    try:
        write_new_file(path, encrypted)
    except BaseException:
        record_path.unlink(missing_ok=True)
        raise
    return FileCaKey(path.as_uri(), algorithm, private_key)


def load(path: Path, password: KeyPassword) -> FileCaKey:
    """Unlock the key at `path`. Checks in this order: the file exists, it is encrypted
    PKCS#8, its protection record parses, the password opens it, the key matches the record."""
    path = path.absolute()
    pem = read_small_file(path, "key file", if_missing=KeyNotFound("no key file", path=str(path)))
    check_encrypted_pem(pem)
    record = ProtectionRecord.from_json(
        read_small_file(
            protection_path(path),
            "key protection record",
            if_missing=KeyFileInvalid(
                "the key file has no protection record beside it", path=str(path)
            ),
        )
    )
    secret = password.recover_password(record.password, record.binding())
    try:
        # The stub says bytes; the Rust binding borrows any buffer, so no immutable copy is made.
        private_key = serialization.load_pem_private_key(pem, password=secret)  # type: ignore[arg-type]
    except ValueError as exc:
        # PBES2 with AES-CBC cannot tell a wrong password from a damaged file.
        raise KeyUnlockFailed(
            "the key file does not open: wrong passphrase or KEK, or a damaged file",
            path=str(path),
        ) from exc
    except TypeError as exc:
        raise KeyNotProtected("the key file is not encrypted", path=str(path)) from exc
    except UnsupportedAlgorithm as exc:
        raise KeyFileInvalid("the key file uses an unsupported cipher", path=str(path)) from exc
    finally:
        secret[:] = bytes(len(secret))
    algorithm = KeyAlgorithm.of_public_key(private_key.public_key())
    if not isinstance(private_key, CaPrivateKey):  # of_public_key() already refused others
        raise KeyFileInvalid("the key file holds no CA key type", path=str(path))
    if algorithm is not record.algorithm or (
        _public_key_sha256(private_key.public_key()) != record.public_key_sha256
    ):
        raise KeyFileInvalid("the key file does not match its protection record", path=str(path))
    return FileCaKey(path.as_uri(), algorithm, private_key)

"""A `DeviceKey` whose private key this process holds (the `file:` keystore): signing is
cryptography's, and TLS gets the key through an encrypted PKCS#8 file that exists only for
the instant OpenSSL reads it.

`load_into` never writes the key in clear: it encrypts it under a one-time random password
(held in a bytearray, wiped afterwards) into a 0600 file in a private 0700 directory, lets
`SSLContext.load_cert_chain` decrypt it, and deletes the directory.
"""

from __future__ import annotations

import os
import secrets
import ssl
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from devicetrust.device.keystore._base import KeystoreError
from devicetrust.device.keystore._labels import wipe


class SoftwareKey:
    """One P-256 key in this process's memory (decrypted from the keystore file)."""

    def __init__(self, label: str, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._label = label
        self._key = private_key

    def __repr__(self) -> str:
        return f"SoftwareKey(label={self._label!r})"

    @property
    def label(self) -> str:
        return self._label

    @property
    def hardware(self) -> bool:
        return False

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    def signer(self) -> ec.EllipticCurvePrivateKey:
        return self._key

    def load_into(self, context: ssl.SSLContext, certificate_chain_pem: bytes) -> None:
        password = bytearray(secrets.token_hex(32).encode("ascii"))
        try:
            encrypted = self._key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(bytes(password)),
            )
            with tempfile.TemporaryDirectory(prefix="dt-tls-") as directory:
                key_file = _write_private(Path(directory) / "key.pem", encrypted)
                chain_file = _write_private(Path(directory) / "chain.pem", certificate_chain_pem)
                try:
                    context.load_cert_chain(chain_file, key_file, password=password)
                except ssl.SSLError as exc:
                    raise KeystoreError(
                        f"OpenSSL refused key {self._label!r} with this certificate chain "
                        f"({exc.reason})",
                        code="keystore.tls_load_failed",
                    ) from None
        finally:
            wipe(password)


def _write_private(path: Path, data: bytes) -> str:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return str(path)

"""The keystore interface of the device SDK: one small Protocol, three backends.

A `Keystore` holds a device's private keys and small secrets under labels; a `DeviceKey` is
one P-256 key in it. The private part may be unreadable by this process (TPM, PKCS#11): a
key signs, hands out its public key, and offers a cryptography-compatible signer for CSRs
and JWTs. TLS client authentication is an optional capability (`load_into`): a backend that
cannot give OpenSSL its key raises `TlsKeyUnsupported`, and the device falls back to a JWT
signed by the key (see docs/device-keystores.md).

Backends are chosen by URI scheme (`open_keystore`): `file:`, `pkcs11:`, `tpm2:`.
"""

from __future__ import annotations

import ssl
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives.asymmetric import ec


class KeystoreError(Exception):
    """Base of the keystore's errors; `code` is stable and machine-readable. Never carries
    key material, a PIN or a passphrase."""

    code = "keystore.error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class KeyNotFound(KeystoreError):
    code = "keystore.key_not_found"


class KeyExists(KeystoreError):
    code = "keystore.key_exists"


class TlsKeyUnsupported(KeystoreError):
    """This backend cannot give its key to OpenSSL for TLS client authentication."""

    code = "keystore.tls_unsupported"


class InvalidKeystoreUri(KeystoreError):
    """The keystore URI or a label does not follow the grammar (docs/device-keystores.md)."""

    code = "keystore.invalid_uri"


class KeystoreUnavailable(KeystoreError):
    """The backend's library, module, token or TPM cannot be reached."""

    code = "keystore.unavailable"


class UnlockFailed(KeystoreError):
    """The secret (device secret, PIN) does not open the keystore, or a sealed object does
    not open (wrong TPM, PCR values changed)."""

    code = "keystore.unlock_failed"


class KeystoreCorrupt(KeystoreError):
    """The keystore's stored data is malformed, of an unknown format version, or tampered."""

    code = "keystore.corrupt"


@runtime_checkable
class DeviceKey(Protocol):
    """One P-256 key held by a keystore."""

    @property
    def label(self) -> str: ...

    @property
    def hardware(self) -> bool:
        """True when the private key cannot leave a TPM or token."""
        ...

    def public_key(self) -> ec.EllipticCurvePublicKey: ...

    def sign(self, data: bytes) -> bytes:
        """ECDSA P-256 with SHA-256 over `data`; DER-encoded signature."""
        ...

    def signer(self) -> ec.EllipticCurvePrivateKey:
        """A cryptography-compatible private key whose `sign` runs in the keystore, for
        `CertificateSigningRequestBuilder.sign` and JWT signing. Its private numbers and
        private bytes are never available for a hardware key."""
        ...

    def load_into(self, context: ssl.SSLContext, certificate_chain_pem: bytes) -> None:
        """Make `context` present this key and the chain (leaf first) as TLS client
        credential. Raises `TlsKeyUnsupported` when the backend cannot."""
        ...


@runtime_checkable
class Keystore(Protocol):
    """A device's keys and small sealed secrets, by label."""

    @property
    def kind(self) -> str:
        """`file`, `pkcs11` or `tpm2`."""
        ...

    def create_key(self, label: str) -> DeviceKey:
        """A new P-256 key generated inside the keystore; `KeyExists` if the label is taken."""
        ...

    def key(self, label: str) -> DeviceKey:
        """The key stored under `label` (also after a restart); `KeyNotFound` if none."""
        ...

    def delete_key(self, label: str) -> None: ...

    def labels(self) -> list[str]: ...

    def seal(self, label: str, secret: bytes | bytearray) -> None:
        """Keep a small secret (at most 128 bytes: a symmetric device key, a buffer key)
        protected by the keystore; replaces an existing one under the same label."""
        ...

    def unseal(self, label: str) -> bytearray:
        """The secret sealed under `label`, in a bytearray the caller wipes; `KeyNotFound`."""
        ...

    def close(self) -> None: ...

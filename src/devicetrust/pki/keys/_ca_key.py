"""`CaKey`: the one small interface every CA key backend offers, whatever holds the key.

A `CaKey` signs certificates, CRLs, OCSP responses and raw bytes, and shows its public key;
it never hands out private key material (there is no export, no `private_bytes`, no key
object accessor). Backends are picked by URI scheme in `_dispatch`.
"""

from __future__ import annotations

from types import TracebackType
from typing import NoReturn, Protocol, Self, runtime_checkable

from cryptography import x509
from cryptography.x509 import ocsp

from devicetrust.pki.keys._algorithm import CaPublicKey, KeyAlgorithm


@runtime_checkable
class CaKey(Protocol):
    """A CA private key that stays where it is kept (encrypted file, HSM) and signs."""

    @property
    def uri(self) -> str:
        """Where the key lives, e.g. `file:///srv/ca/root.key.pem` or
        `pkcs11:token=devicetrust;object=root-ca`. Never carries a secret."""
        ...

    @property
    def algorithm(self) -> KeyAlgorithm: ...

    def public_key(self) -> CaPublicKey: ...

    def sign_certificate(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        """Sign with the algorithm's hash (SHA-256, SHA-384 for P-384; none for Ed25519)."""
        ...

    def sign_crl(
        self, builder: x509.CertificateRevocationListBuilder
    ) -> x509.CertificateRevocationList: ...

    def sign_ocsp(self, builder: ocsp.OCSPResponseBuilder) -> ocsp.OCSPResponse:
        """A `successful` basic OCSP response signed by this key (RFC 6960 §4.2.1). A backend
        that cannot (`pkcs11:`) raises `pki.unsupported_key_operation`: use a delegated
        responder key certified by this one (RFC 6960 §4.2.2.2)."""
        ...

    def sign_bytes(self, data: bytes) -> bytes:
        """Signature over `data`: DER ECDSA, raw Ed25519, or RSA PKCS#1 v1.5 with SHA-256."""
        ...

    def close(self) -> None:
        """Drop the key (zeroing what this process can zero); later use raises
        `pki.key_closed`. Calling it twice is harmless."""
        ...


class KeyHandle:
    """Lifecycle shared by the key backends: a context manager that closes the key, and
    never pickled or copied (a copy would escape `close()`)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __reduce__(self) -> NoReturn:
        raise TypeError("a CA key cannot be pickled or copied")

"""What a key held in hardware (a TPM, a PKCS#11 token) has in common: its private part never
reaches this process, so it signs SHA-256 digests through its backend, offers that as a
cryptography-compatible `RemoteSigner`, and cannot be handed to OpenSSL for TLS client
authentication (the device authenticates with a JWT signed by the key instead)."""

from __future__ import annotations

import hashlib
import ssl

from cryptography.hazmat.primitives.asymmetric import ec

from devicetrust.device.keystore._base import TlsKeyUnsupported
from devicetrust.device.keystore._remote_signer import RemoteSigner


class HardwareKey:
    """A `DeviceKey` whose backend signs; subclasses give `_sign_digest` and `_scheme`."""

    _scheme = "hardware"

    def __init__(self, label: str, public: ec.EllipticCurvePublicKey) -> None:
        self._label = label
        self._public = public

    def __repr__(self) -> str:
        return f"{type(self).__name__}(label={self._label!r})"

    @property
    def label(self) -> str:
        return self._label

    @property
    def hardware(self) -> bool:
        return True

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        return self._sign_digest(hashlib.sha256(data).digest())

    def signer(self) -> ec.EllipticCurvePrivateKey:
        return RemoteSigner(self._public, self._sign_digest)

    def load_into(self, context: ssl.SSLContext, certificate_chain_pem: bytes) -> None:
        raise TlsKeyUnsupported(
            f"a {self._scheme}: key cannot be given to OpenSSL here; authenticate with a JWT "
            "signed by the key (sign_jwt; docs/device-keystores.md)"
        )

    def _sign_digest(self, digest: bytes) -> bytes:
        """ECDSA P-256 over a SHA-256 digest, DER-encoded, by the backend."""
        raise NotImplementedError

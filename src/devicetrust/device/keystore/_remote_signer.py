"""A cryptography `EllipticCurvePrivateKey` whose signatures are made elsewhere (a TPM, a
PKCS#11 token): what `DeviceKey.signer()` returns for a hardware key, so cryptography's
CSR and certificate builders, and JWT code, sign without ever holding the private key.

Only ECDSA with SHA-256 over P-256. Its private numbers and private bytes do not exist
here: asking for them raises `TypeError`, as for any key that cannot be exported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

SignDigest = Callable[[bytes], bytes]
"""Signs a SHA-256 digest, returns a DER ECDSA signature."""


class RemoteSigner(ec.EllipticCurvePrivateKey):
    def __init__(self, public_key: ec.EllipticCurvePublicKey, sign_digest: SignDigest) -> None:
        self._public = public_key
        self._sign_digest = sign_digest

    def sign(
        self,
        data: bytes | bytearray | memoryview,
        signature_algorithm: ec.EllipticCurveSignatureAlgorithm,
    ) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise ValueError("a hardware device key signs ECDSA only")
        algorithm = signature_algorithm.algorithm
        if isinstance(algorithm, utils.Prehashed):
            if not isinstance(algorithm._algorithm, hashes.SHA256) or len(data) != 32:
                raise ValueError("a hardware device key signs SHA-256 digests only")
            return self._sign_digest(bytes(data))
        if not isinstance(algorithm, hashes.SHA256):
            raise ValueError("a hardware device key signs with SHA-256 only")
        digest = hashes.Hash(hashes.SHA256())
        digest.update(bytes(data))
        return self._sign_digest(digest.finalize())

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise TypeError("a device signing key does not do key agreement")

    def private_numbers(self) -> NoReturn:
        raise TypeError("the private key stays in the hardware")

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> NoReturn:
        raise TypeError("the private key stays in the hardware")

    def __copy__(self) -> RemoteSigner:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> RemoteSigner:
        return self

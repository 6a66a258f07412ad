"""`KeyAlgorithm`: the CA key algorithms devicetrust issues with, and what each one implies.

Owns the mapping from an algorithm to its curve or modulus, its certificate hash and its
padding. Never accepts a key outside this table (a P-521 or RSA-2048 key is refused, not
"nearly" supported): a CA key of an unexpected kind is a mistake to report.
"""

from __future__ import annotations

import enum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from devicetrust.pki.keys._errors import UnsupportedKeyAlgorithm

CaPrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
CaPublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

RSA_BITS = 3072  # NIST SP 800-57 Part 1 Rev. 5, Table 2: 128-bit security, like P-256
RSA_PUBLIC_EXPONENT = 65537


class KeyAlgorithm(enum.Enum):
    """A CA key algorithm. The value is the stable name used in files, URIs and the CLI."""

    ECDSA_P256 = "ecdsa-p256"  # default; signs with SHA-256
    ECDSA_P384 = "ecdsa-p384"  # signs with SHA-384
    ED25519 = "ed25519"  # pure EdDSA (RFC 8032), no separate hash
    RSA_3072 = "rsa-3072"  # PKCS#1 v1.5 with SHA-256 (RFC 4055 sha256WithRSAEncryption)

    @classmethod
    def default(cls) -> KeyAlgorithm:
        return cls.ECDSA_P256

    @classmethod
    def parse(cls, name: str) -> KeyAlgorithm:
        """By stable name ("ecdsa-p256", ...); anything else is refused."""
        for member in cls:
            if member.value == name:
                return member
        known = ", ".join(m.value for m in cls)
        raise UnsupportedKeyAlgorithm(
            f"unknown key algorithm {name!r}; known: {known}", algorithm=name
        )

    @classmethod
    def of_public_key(cls, public_key: object) -> KeyAlgorithm:
        """The algorithm of an existing key, or `pki.unsupported_key_algorithm`."""
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            if isinstance(public_key.curve, ec.SECP256R1):
                return cls.ECDSA_P256
            if isinstance(public_key.curve, ec.SECP384R1):
                return cls.ECDSA_P384
            raise UnsupportedKeyAlgorithm(
                f"EC curve {public_key.curve.name} is not a CA key curve (P-256, P-384)",
                curve=public_key.curve.name,
            )
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            return cls.ED25519
        if isinstance(public_key, rsa.RSAPublicKey):
            if public_key.key_size == RSA_BITS:
                return cls.RSA_3072
            raise UnsupportedKeyAlgorithm(
                f"RSA CA keys are {RSA_BITS} bits, this one has {public_key.key_size}",
                key_size=public_key.key_size,
            )
        raise UnsupportedKeyAlgorithm(
            f"{type(public_key).__name__} is not a CA key type", key_type=type(public_key).__name__
        )

    @property
    def curve(self) -> ec.EllipticCurve | None:
        """The ECDSA curve, `None` for other algorithms."""
        if self is KeyAlgorithm.ECDSA_P256:
            return ec.SECP256R1()
        if self is KeyAlgorithm.ECDSA_P384:
            return ec.SECP384R1()
        return None

    @property
    def hash_algorithm(self) -> hashes.SHA256 | hashes.SHA384 | None:
        """The hash for certificate, CRL and OCSP signatures; `None` for Ed25519."""
        if self is KeyAlgorithm.ECDSA_P384:
            return hashes.SHA384()
        if self is KeyAlgorithm.ED25519:
            return None
        return hashes.SHA256()

    @property
    def ecdsa_scalar_size(self) -> int:
        """Bytes of r (and of s) in a raw ECDSA signature; 0 for non-ECDSA algorithms."""
        curve = self.curve
        return 0 if curve is None else (curve.key_size + 7) // 8

    def generate_private_key(self) -> CaPrivateKey:
        """A new key from the OS CSPRNG (through OpenSSL), inside this process."""
        curve = self.curve
        if curve is not None:
            return ec.generate_private_key(curve)
        if self is KeyAlgorithm.ED25519:
            return ed25519.Ed25519PrivateKey.generate()
        return rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_BITS)

    def generate_placeholder_key(self) -> CaPrivateKey:
        """A throwaway key whose signatures carry the same signature-algorithm identifier.

        Used only to obtain to-be-signed bytes from `cryptography`'s builders; for RSA the
        identifier (sha256WithRSAEncryption, NULL parameters) does not depend on the modulus
        size, so a 2048-bit key keeps this cheap."""
        if self is KeyAlgorithm.RSA_3072:
            return rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=2048)
        return self.generate_private_key()

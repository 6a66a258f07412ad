"""Signature encodings and verification for `KeyAlgorithm`: the one check every HSM signature
and every test vector goes through.

Never accepts a signature by any path other than `cryptography`'s verification (no leniency on
encodings: BER, missing zeros or trailing bytes in an ECDSA signature fail), and never lets a
key of one algorithm verify under another's rules.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from devicetrust.pki.keys._algorithm import CaPublicKey, KeyAlgorithm
from devicetrust.pki.keys._errors import SignatureInvalid, UnsupportedKeyAlgorithm


def ecdsa_raw_to_der(raw: bytes, algorithm: KeyAlgorithm) -> bytes:
    """PKCS#11 CKM_ECDSA output (r || s, each the curve's byte size; PKCS#11 v2.40 §2.3.1)
    to the DER `Ecdsa-Sig-Value` of RFC 3279 §2.2.3 that X.509 carries."""
    size = algorithm.ecdsa_scalar_size
    if size == 0:
        raise UnsupportedKeyAlgorithm(
            f"{algorithm.value} signatures are not ECDSA", algorithm=algorithm.value
        )
    if len(raw) != 2 * size:
        raise SignatureInvalid(
            f"a raw {algorithm.value} signature is {2 * size} bytes, got {len(raw)}",
            size=len(raw),
        )
    r = int.from_bytes(raw[:size], "big")
    s = int.from_bytes(raw[size:], "big")
    return encode_dss_signature(r, s)


def verify_signature(
    public_key: CaPublicKey, algorithm: KeyAlgorithm, data: bytes, signature: bytes
) -> None:
    """Check `signature` over `data` as `algorithm` signs it (DER ECDSA with the algorithm's
    hash, pure Ed25519, RSA PKCS#1 v1.5 with SHA-256). Raises `pki.signature_invalid` when it
    does not verify, `pki.unsupported_key_algorithm` when the key is not of `algorithm`."""
    actual = KeyAlgorithm.of_public_key(public_key)
    if actual is not algorithm:
        raise UnsupportedKeyAlgorithm(
            f"a {actual.value} key cannot verify {algorithm.value} signatures",
            key_algorithm=actual.value,
            algorithm=algorithm.value,
        )
    hash_algorithm = algorithm.hash_algorithm
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey) and hash_algorithm is not None:
            public_key.verify(signature, data, ec.ECDSA(hash_algorithm))
        elif isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, data)
        elif isinstance(public_key, rsa.RSAPublicKey) and hash_algorithm is not None:
            public_key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
        else:  # unreachable: of_public_key() accepted the key for `algorithm`
            raise UnsupportedKeyAlgorithm(f"cannot verify {algorithm.value} signatures")
    except InvalidSignature as exc:
        raise SignatureInvalid(f"the {algorithm.value} signature does not verify") from exc

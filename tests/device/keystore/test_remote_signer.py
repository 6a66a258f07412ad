"""`RemoteSigner`, the cryptography key a hardware `DeviceKey.signer()` returns: it signs
SHA-256 (plain or prehashed) through its callback, refuses everything else, exports nothing."""

from __future__ import annotations

import copy
import hashlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from devicetrust.device.keystore._remote_signer import RemoteSigner

ECDSA = ec.ECDSA(hashes.SHA256())


@pytest.fixture
def inside() -> ec.EllipticCurvePrivateKey:
    """Stands for the key inside the hardware."""
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def signer(inside: ec.EllipticCurvePrivateKey) -> RemoteSigner:
    prehashed = ec.ECDSA(utils.Prehashed(hashes.SHA256()))
    return RemoteSigner(inside.public_key(), lambda digest: inside.sign(digest, prehashed))


def test_signs_data_and_digests(signer: RemoteSigner) -> None:
    public = signer.public_key()
    public.verify(signer.sign(b"data", ECDSA), b"data", ECDSA)
    digest = hashlib.sha256(b"data").digest()
    prehashed = ec.ECDSA(utils.Prehashed(hashes.SHA256()))
    public.verify(signer.sign(digest, prehashed), b"data", ECDSA)
    assert signer.key_size == 256 and isinstance(signer.curve, ec.SECP256R1)
    assert copy.deepcopy(signer) is signer


@pytest.mark.parametrize(
    "algorithm",
    [ec.ECDSA(hashes.SHA384()), ec.ECDSA(utils.Prehashed(hashes.SHA384()))],
)
def test_refuses_other_hashes(signer: RemoteSigner, algorithm: ec.ECDSA) -> None:
    with pytest.raises(ValueError):
        signer.sign(b"x" * 48, algorithm)


def test_exports_nothing(signer: RemoteSigner) -> None:
    with pytest.raises(TypeError):
        signer.private_numbers()
    with pytest.raises(TypeError):
        signer.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    with pytest.raises(TypeError):
        signer.exchange(ec.ECDH(), signer.public_key())

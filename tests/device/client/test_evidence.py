"""The device's half of the attestation evidence, pinned to the server's verifiers: a token
the SDK makes is the one `provisioning.symmetric` decodes, a message it signs is the one
`provisioning.x509` verifies."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from devicetrust.device.client._evidence import (
    derive_member_key,
    symmetric_token,
    x509_message,
)
from devicetrust.provisioning import challenge_message, encode_token
from devicetrust.provisioning.enrollments import derive_key
from devicetrust.provisioning.symmetric import decode_token

PID = "c2c38155-b0d2-48b6-82fd-22fe3b316224"
EXP = datetime(2030, 1, 1, tzinfo=UTC)


def test_token_is_byte_for_byte_the_servers_encoding() -> None:
    key = bytes(range(32))
    assert symmetric_token(key, PID, EXP, "n" * 22) == encode_token(key, PID, EXP, "n" * 22)


def test_token_carries_a_fresh_nonce_the_server_accepts() -> None:
    first, second = symmetric_token(b"k" * 32, PID, EXP), symmetric_token(b"k" * 32, PID, EXP)
    claims_bytes, mac, claims = decode_token(first)
    assert claims["registration_id"] == PID and claims["exp"] == int(EXP.timestamp())
    assert hmac.compare_digest(mac, hmac.digest(b"k" * 32, claims_bytes, hashlib.sha256))
    assert decode_token(second)[2]["nonce"] != claims["nonce"]


def test_member_key_is_the_servers_derivation() -> None:
    assert derive_member_key(b"g" * 32, PID) == derive_key(b"g" * 32, PID)


def test_x509_message_is_what_the_server_verifies() -> None:
    csr = b"-----BEGIN CERTIFICATE REQUEST-----\n..."
    assert x509_message("ch-1", "nonce", PID, csr) == challenge_message("ch-1", "nonce", PID, csr)
    key = ec.generate_private_key(ec.SECP256R1())
    signature = key.sign(x509_message("ch-1", "nonce", PID, csr), ec.ECDSA(hashes.SHA256()))
    key.public_key().verify(
        signature, challenge_message("ch-1", "nonce", PID, csr), ec.ECDSA(hashes.SHA256())
    )

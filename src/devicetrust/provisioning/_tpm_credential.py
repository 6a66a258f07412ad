"""Credential activation, the server half (TPM 2.0 Part 1 §24, Part 3 §12.6 MakeCredential).

The server draws a fresh secret and seals it to the enrolled EK and to the *Name* of the AK
the device presented: the seed is encrypted to the EK (RSA-OAEP with label "IDENTITY\\0", or
ECDH + KDFe for an ECC EK), and the secret is protected by keys KDFa derives from that seed
and the AK's Name. Only the TPM that holds the EK's private part can unwrap the seed, and it
releases the secret (TPM2_ActivateCredential) only when a loaded object with that Name is
present. A device that returns the secret has therefore shown that the AK lives in the same
TPM as the EK. The encryption itself is tpm2-pytss's `make_credential`, cross-checked
in the tests against `tpm2_makecredential` (tpm2-tools).

What the server keeps (`TpmChallenge.expectation`) is the certification nonce and a SHA-256
over the AK Name, the secret and the nonce, never the secret itself. Compares in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from devicetrust.provisioning._tpm_objects import TpmKeyRole, parse_public, tss
from devicetrust.provisioning.errors import AttestationFailed, RefusalReason

SECRET_BYTES = 32  # a TPM2B_DIGEST no longer than the EK's nameAlg digest (SHA-256 or more)
NONCE_BYTES = 32
_DOMAIN = b"devicetrust tpm activation v1\x00"


@dataclass(frozen=True, slots=True)
class TpmChallenge:
    """One MakeCredential: what the device gets (`credential_blob`, `encrypted_secret`,
    `nonce`) and what only the server knows (`expected_secret`)."""

    credential_blob: bytes  # TPM2B_ID_OBJECT, marshalled
    encrypted_secret: bytes  # TPM2B_ENCRYPTED_SECRET, marshalled
    nonce: bytes  # the qualifying data the device's TPM2_Certify must carry
    ak_name: bytes
    expected_secret: bytes = field(repr=False)

    @property
    def expectation(self) -> bytes:
        """What the server stores for this challenge (no secret in it)."""
        return expectation(self.ak_name, self.expected_secret, self.nonce)


def make_challenge(ek_public: bytes, ak_public: bytes) -> TpmChallenge:
    """MakeCredential of a fresh secret for the AK `ak_public` (TPM2B_PUBLIC) under the EK
    `ek_public` (TPM2B_PUBLIC, as registered at the factory). Refuses an AK that is not a
    restricted signing key born in a TPM (`provisioning.tpm_refused`)."""
    pytss = tss()
    ek = parse_public(ek_public, TpmKeyRole.ENDORSEMENT, "ek_public")
    ak = parse_public(ak_public, TpmKeyRole.ATTESTATION, "ak_public")
    ek_area, _ = pytss.types.TPM2B_PUBLIC.unmarshal(ek.area)
    secret = secrets.token_bytes(SECRET_BYTES)
    name = pytss.types.TPM2B_NAME(ak.name)
    try:
        blob, encrypted = pytss.utils.make_credential(ek_area, secret, name)
    except ValueError as exc:  # an EK type or symmetric scheme tpm2-pytss cannot seal to
        raise AttestationFailed(
            RefusalReason.TPM_REFUSED, "cannot make a credential for this EK"
        ) from exc
    return TpmChallenge(
        credential_blob=bytes(blob.marshal()),
        encrypted_secret=bytes(encrypted.marshal()),
        nonce=secrets.token_bytes(NONCE_BYTES),
        ak_name=ak.name,
        expected_secret=secret,
    )


def expectation(ak_name: bytes, secret: bytes, nonce: bytes) -> bytes:
    """nonce || SHA-256(domain, AK Name, secret, nonce), each length-prefixed."""
    digest = hashlib.sha256(_DOMAIN)
    for part in (ak_name, secret, nonce):
        digest.update(len(part).to_bytes(2, "big") + part)
    return nonce + digest.digest()


def nonce_of(stored: bytes) -> bytes:
    """The certification nonce a stored expectation carries."""
    if len(stored) != NONCE_BYTES + hashlib.sha256().digest_size:
        raise AttestationFailed(
            RefusalReason.CHALLENGE_INVALID, "the challenge was not issued for TPM attestation"
        )
    return stored[:NONCE_BYTES]


def check_activation(stored: bytes, ak_name: bytes, secret: bytes) -> None:
    """The device returned the secret sealed for `ak_name`, or `provisioning.tpm_refused`.

    A mismatch means: another TPM (the EK is not in this device), another AK than the one the
    challenge was made for, or a guessed secret; the device is told only that it failed."""
    recomputed = expectation(ak_name, secret, nonce_of(stored))
    if not hmac.compare_digest(recomputed, stored):
        raise AttestationFailed(
            RefusalReason.TPM_REFUSED, "the activated credential does not match the challenge"
        )

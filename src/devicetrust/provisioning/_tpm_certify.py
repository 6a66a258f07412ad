"""Hardware key proof: the AK's TPM2_Certify of the device's operational key (TPM 2.0 Part 3
§18.2), checked in this order:

1. the AK is a restricted signing key born in a TPM            provisioning.tpm_refused
2. the key is a signing key born in this TPM and bound to it
   (fixedTPM, fixedParent, sensitiveDataOrigin; not restricted) provisioning.tpm_refused
3. the signature over the attest structure verifies with the AK,
   in the AK's own scheme                                        provisioning.tpm_refused
4. the attest structure is TPM-generated (magic) and a certification
5. its qualifying data is the server's nonce (freshness)
6. the certified Name is the Name computed from the key's public area

Because the AK is restricted, the TPM signs a structure beginning with TPM_GENERATED_VALUE
only when it produced it itself (Part 1 §25.2.4): a certification cannot be forged by asking
the AK to sign chosen bytes. Never reads the attest structure before its signature verified.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from devicetrust.pki.csr import spki_sha256
from devicetrust.provisioning._tpm_objects import (
    PublicKey,
    TpmKeyRole,
    parse_certify,
    parse_public,
    verify_signature,
)
from devicetrust.provisioning.errors import AttestationFailed, RefusalReason


@dataclass(frozen=True, slots=True)
class CertifiedKey:
    """A key the TPM holding the AK certified as its own non-exportable signing key."""

    public_key: PublicKey
    name: bytes
    spki_sha256: str  # compare with the CSR's (`pki.csr.spki_sha256`)


def verify_certify(
    *, ak_public: bytes, key_public: bytes, attest: bytes, signature: bytes, nonce: bytes
) -> CertifiedKey:
    """Steps 1-6 of the module docstring. `attest` is the TPMS_ATTEST the TPM returned
    (`certifyInfo`), `signature` the TPMT_SIGNATURE, both marshalled; `nonce` the qualifying
    data the server issued."""
    ak = parse_public(ak_public, TpmKeyRole.ATTESTATION, "ak_public")
    key = parse_public(key_public, TpmKeyRole.HARDWARE_KEY, "key_public")
    verify_signature(ak, signature, attest, "certify_signature")
    info = parse_certify(attest)
    if not hmac.compare_digest(info.qualifying_data, nonce):
        raise AttestationFailed(
            RefusalReason.TPM_REFUSED, "the certification was not made for this challenge"
        )
    if not hmac.compare_digest(info.certified_name, key.name):
        raise AttestationFailed(
            RefusalReason.TPM_REFUSED, "the certification is not of the presented key"
        )
    return CertifiedKey(public_key=key.key, name=key.name, spki_sha256=spki_sha256(key.key))

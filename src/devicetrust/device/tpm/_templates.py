"""The public-area templates the keystore creates objects from, and the EK types it knows.

Every key is born in the TPM and bound to it (fixedTPM, fixedParent, sensitiveDataOrigin):
the server refuses a certification of any other kind of key. The AK is a *primary* key of the
endorsement hierarchy: TPM2_CreatePrimary derives it from the endorsement seed and this
template (Part 1 §27.7), so the device recreates the same AK on every run and stores nothing.
"""

from __future__ import annotations

import enum
from typing import Any

_BORN_IN_TPM = ("FIXEDTPM", "FIXEDPARENT", "SENSITIVEDATAORIGIN", "USERWITHAUTH")


class EndorsementKeyType(enum.Enum):
    """TCG EK Credential Profile 2.0 EK types: (template name, NV index of its certificate)."""

    RSA_2048 = ("EK-RSA2048", 0x01C00002)  # L-1
    ECC_P256 = ("EK-ECC256", 0x01C0000A)  # L-2
    ECC_P384 = ("EK-HIGH-ECC384", 0x01C00016)  # H-3 (swtpm's ECC EK)

    @property
    def template_name(self) -> str:
        return self.value[0]

    @property
    def certificate_index(self) -> int:
        return self.value[1]


def _attributes(pytss: Any, *names: str) -> Any:
    flags = pytss.constants.TPMA_OBJECT(0)
    for name in names:
        flags |= getattr(pytss.constants.TPMA_OBJECT, name)
    return flags


def attestation_key(pytss: Any) -> Any:
    """A restricted ECDSA P-256/SHA-256 signing key (the AK): it signs only TPM-made data."""
    return pytss.types.TPM2B_PUBLIC.parse(
        "ecc256:ecdsa-sha256:null",
        objectAttributes=_attributes(pytss, *_BORN_IN_TPM, "RESTRICTED", "SIGN_ENCRYPT"),
    )


def storage_root_key(pytss: Any) -> Any:
    """The ECC P-256 storage root key of the TCG TPM v2.0 Provisioning Guidance §7.5.1."""
    return pytss.types.TPM2B_PUBLIC.parse(
        "ecc256:aes128cfb",
        objectAttributes=_attributes(pytss, *_BORN_IN_TPM, "NODA", "RESTRICTED", "DECRYPT"),
    )


def hardware_key(pytss: Any) -> Any:
    """The operational key: unrestricted ECDSA P-256/SHA-256 signing, never decrypting."""
    return pytss.types.TPM2B_PUBLIC.parse(
        "ecc256:ecdsa-sha256",
        objectAttributes=_attributes(pytss, *_BORN_IN_TPM, "SIGN_ENCRYPT"),
    )


def sealed_data(pytss: Any, policy: bytes) -> Any:
    """A sealed data object (KEYEDHASH, no scheme) for TPM2_Create with caller data: bound
    to this TPM and parent. Without a policy, its empty authValue opens it; with a PCR
    policy, only the policy does (userWithAuth clear)."""
    constants = pytss.constants
    names = ("FIXEDTPM", "FIXEDPARENT") if policy else ("FIXEDTPM", "FIXEDPARENT", "USERWITHAUTH")
    template = pytss.types.TPM2B_PUBLIC(
        publicArea=pytss.types.TPMT_PUBLIC(
            type=constants.TPM2_ALG.KEYEDHASH,
            nameAlg=constants.TPM2_ALG.SHA256,
            objectAttributes=_attributes(pytss, *names),
            authPolicy=policy,
        )
    )
    template.publicArea.parameters.keyedHashDetail.scheme.scheme = constants.TPM2_ALG.NULL
    return template


def session_cipher(pytss: Any) -> Any:
    """AES-128-CFB parameter encryption for sessions salted by the SRK, so a secret leaving
    the TPM (TPM2_Unseal) is not in clear on the bus or the TCTI socket."""
    types, alg = pytss.types, pytss.constants.TPM2_ALG
    return types.TPMT_SYM_DEF(
        algorithm=alg.AES,
        keyBits=types.TPMU_SYM_KEY_BITS(aes=128),
        mode=types.TPMU_SYM_MODE(aes=alg.CFB),
    )

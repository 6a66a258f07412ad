"""TPM 2.0 structures as the server reads them: public areas, names, signatures, attestations.

Unmarshalling is tpm2-pytss's (the TCG TSS 2.0 marshalling library), imported on first use so
that a server without the `tpm` extra starts and refuses TPM work with
`provisioning.tpm_unavailable`. What the structures *mean* is judged here, in plain Python.

Never takes a name from the device: every name is computed from a public area (TPM 2.0
Part 1 §16: Name = nameAlg || H_nameAlg(TPMT_PUBLIC)). Never accepts trailing bytes after a
structure, and never verifies a signature under a scheme other than the one fixed in the
signing key's public area.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from devicetrust.provisioning._tpm_errors import TpmSupportMissing
from devicetrust.provisioning.errors import AttestationFailed, MalformedEvidence, RefusalReason

MAX_STRUCTURE_BYTES = 2048  # a TPM2B_PUBLIC of RSA 4096 is ~600 bytes; bounds parsing work

# TPM 2.0 Part 2 §6.3 (TPM_ALG_ID) and §6.10 (TPM_ST); only the values this module reads.
ALG_RSA = 0x0001
ALG_SHA256 = 0x000B
ALG_SHA384 = 0x000C
ALG_RSASSA = 0x0014
ALG_ECDSA = 0x0018
ALG_ECC = 0x0023
TPM_GENERATED_VALUE = 0xFF544347  # Part 2 §6.2: "\xffTCG", only the TPM writes it
ST_ATTEST_CERTIFY = 0x8017

_HASHES: dict[int, type[hashes.HashAlgorithm]] = {
    ALG_SHA256: hashes.SHA256,
    ALG_SHA384: hashes.SHA384,
}


class ObjectAttribute(enum.IntFlag):
    """TPMA_OBJECT (TPM 2.0 Part 2 §8.3)."""

    FIXED_TPM = 0x00000002
    FIXED_PARENT = 0x00000010
    SENSITIVE_DATA_ORIGIN = 0x00000020
    USER_WITH_AUTH = 0x00000040
    ADMIN_WITH_POLICY = 0x00000080
    RESTRICTED = 0x00010000
    DECRYPT = 0x00020000
    SIGN = 0x00040000


_BORN_IN_TPM = (
    ObjectAttribute.FIXED_TPM | ObjectAttribute.FIXED_PARENT | ObjectAttribute.SENSITIVE_DATA_ORIGIN
)


class TpmKeyRole(enum.Enum):
    """What a key must be, as (attributes required, attributes forbidden).

    All three were generated inside the TPM and can never leave it (fixedTPM, fixedParent,
    sensitiveDataOrigin). The EK only decrypts restricted-format data (a credential); the AK
    signs only data the TPM produced itself, so a quote or certification from it cannot be
    forged with a chosen message (Part 1 §25.2.4); the hardware key signs anything (the CSR)."""

    ENDORSEMENT = (_BORN_IN_TPM | ObjectAttribute.RESTRICTED | ObjectAttribute.DECRYPT, 0)
    ATTESTATION = (
        _BORN_IN_TPM | ObjectAttribute.RESTRICTED | ObjectAttribute.SIGN,
        ObjectAttribute.DECRYPT,
    )
    HARDWARE_KEY = (_BORN_IN_TPM | ObjectAttribute.SIGN, ObjectAttribute.RESTRICTED)


PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True, slots=True)
class TpmPublic:
    """A parsed TPM2B_PUBLIC whose attributes fit its role."""

    area: bytes  # the TPM2B_PUBLIC exactly as received
    name: bytes  # computed here, never received
    attributes: ObjectAttribute
    name_alg: int
    key: PublicKey
    signature_scheme: int | None  # ALG_ECDSA / ALG_RSASSA when the key fixes one
    signature_hash: int | None

    @property
    def spki_der(self) -> bytes:
        return self.key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass(frozen=True, slots=True)
class CertifyInfo:
    """TPMS_ATTEST of a TPM2_Certify (Part 2 §10.12.12), after its magic and type checked."""

    qualifying_data: bytes
    certified_name: bytes


def tss() -> ModuleType:
    """tpm2-pytss, or `provisioning.tpm_unavailable` when the `tpm` extra is missing."""
    try:
        import tpm2_pytss
        import tpm2_pytss.utils
    except ImportError as exc:
        raise TpmSupportMissing(
            "TPM attestation needs tpm2-pytss (pip install 'devicetrust[tpm]') and libtss2",
            cause=type(exc).__name__,
        ) from exc
    module: ModuleType = tpm2_pytss
    return module


def unmarshal(type_name: str, data: bytes, what: str) -> Any:
    """One complete structure of `type_name` (tpm2_pytss.types), or `malformed_evidence`."""
    pytss = tss()
    if not data or len(data) > MAX_STRUCTURE_BYTES:
        raise MalformedEvidence(f"{what} is empty or too large", size=len(data))
    try:
        value, used = getattr(pytss.types, type_name).unmarshal(data)
    except pytss.TSS2_Exception as exc:
        raise MalformedEvidence(f"{what} is not a {type_name}") from exc
    if used != len(data):
        raise MalformedEvidence(f"{what} has trailing bytes after its {type_name}")
    return value


def parse_public(area: bytes, role: TpmKeyRole, what: str) -> TpmPublic:
    """A TPM2B_PUBLIC for `role`, or `malformed_evidence` / `tpm_refused` (wrong attributes,
    algorithm or scheme)."""
    pytss = tss()
    public = unmarshal("TPM2B_PUBLIC", area, what).publicArea
    attributes = ObjectAttribute(int(public.objectAttributes))
    required, forbidden = role.value
    if attributes & required != required or attributes & forbidden:
        raise AttestationFailed(
            RefusalReason.TPM_REFUSED,
            f"{what} does not have the attributes of a TPM {role.name.lower()} key",
            attributes=f"0x{int(public.objectAttributes):08x}",
        )
    name_alg = int(public.nameAlg)
    if name_alg not in _HASHES:
        raise AttestationFailed(RefusalReason.TPM_REFUSED, f"{what} has an unsupported nameAlg")
    object_type = int(public.type)
    if object_type == ALG_ECC:
        scheme = public.parameters.eccDetail.scheme
    elif object_type == ALG_RSA:
        scheme = public.parameters.rsaDetail.scheme
    else:
        raise AttestationFailed(
            RefusalReason.TPM_REFUSED, f"{what} is neither an RSA nor an ECC key"
        )
    try:
        key = serialization.load_der_public_key(bytes(public.to_der()))
    except (ValueError, pytss.TSS2_Exception) as exc:
        raise MalformedEvidence(f"{what} holds no valid public key") from exc
    if not isinstance(key, PublicKey):
        raise MalformedEvidence(f"{what} holds no RSA or ECC public key")
    scheme_alg = int(scheme.scheme)
    fixed = scheme_alg in (ALG_ECDSA, ALG_RSASSA)
    return TpmPublic(
        area=area,
        name=bytes(public.get_name()),
        attributes=attributes,
        name_alg=name_alg,
        key=key,
        signature_scheme=scheme_alg if fixed else None,
        signature_hash=int(scheme.details.anySig.hashAlg) if fixed else None,
    )


def verify_signature(signer: TpmPublic, signature: bytes, data: bytes, what: str) -> None:
    """A TPMT_SIGNATURE by `signer` over `data`, in exactly the scheme and hash `signer`'s public
    area fixes (an AK always fixes one), or `tpm_refused`."""
    parsed = unmarshal("TPMT_SIGNATURE", signature, what)
    sig_alg = int(parsed.sigAlg)
    if signer.signature_scheme is None or sig_alg != signer.signature_scheme:
        raise AttestationFailed(RefusalReason.TPM_REFUSED, f"{what} uses another scheme")
    details = parsed.signature.ecdsa if sig_alg == ALG_ECDSA else parsed.signature.rsassa
    if int(details.hash) != signer.signature_hash:
        raise AttestationFailed(RefusalReason.TPM_REFUSED, f"{what} uses another hash")
    hash_algorithm = _HASHES.get(signer.signature_hash)
    if hash_algorithm is None:
        raise AttestationFailed(RefusalReason.TPM_REFUSED, f"{what} uses an unsupported hash")
    raw = bytes(parsed)  # DER Ecdsa-Sig-Value for ECDSA, the plain signature for RSASSA
    try:
        if isinstance(signer.key, ec.EllipticCurvePublicKey) and sig_alg == ALG_ECDSA:
            signer.key.verify(raw, data, ec.ECDSA(hash_algorithm()))
        elif isinstance(signer.key, rsa.RSAPublicKey) and sig_alg == ALG_RSASSA:
            signer.key.verify(raw, data, padding.PKCS1v15(), hash_algorithm())
        else:
            raise AttestationFailed(RefusalReason.TPM_REFUSED, f"{what} does not fit the key")
    except InvalidSignature as exc:
        raise AttestationFailed(RefusalReason.TPM_REFUSED, f"{what} does not verify") from exc


def parse_certify(attest: bytes) -> CertifyInfo:
    """A TPMS_ATTEST made by the TPM for TPM2_Certify. Read only after its signature verified:
    the magic proves the TPM produced it only together with a restricted signer."""
    parsed = unmarshal("TPMS_ATTEST", attest, "certify_info")
    if int(parsed.magic) != TPM_GENERATED_VALUE:
        raise AttestationFailed(RefusalReason.TPM_REFUSED, "certify_info was not made by a TPM")
    if int(parsed.type) != ST_ATTEST_CERTIFY:
        raise AttestationFailed(RefusalReason.TPM_REFUSED, "certify_info is not a certification")
    return CertifyInfo(
        qualifying_data=bytes(parsed.extraData),
        certified_name=bytes(parsed.attested.certify.name),
    )

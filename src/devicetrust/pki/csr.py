"""Certificate signing requests: parse, prove possession, judge the key, read what is asked.

The checks run in a fixed order, each refusing with its own code:

1. parse (PEM or DER, at most 64 KiB)                          pki.csr_malformed
2. the CSR's signature verifies with its own key (proof of     pki.csr_bad_signature
   possession, RFC 2986 §3; RFC 4211 §4) before anything else
3. the key is approved: ECDSA P-256/P-384/P-521, Ed25519,      pki.weak_key
   RSA 2048-8192 with an odd exponent >= 65537; no DSA
4. the signature hash is SHA-2 (not SHA-1/MD5; a CSR whose     pki.csr_weak_signature
   SHA-1 signature cannot be verified is told so, not that it
   failed step 2)
5. it asks for no CA powers (CA:TRUE, keyCertSign, cRLSign,    pki.csr_forbidden_request
   name or policy constraints)
6. (with the registry's names) it asks for no subject or       pki.csr_forbidden_request
   alternative name beyond those

Owns nothing but this judgement: never touches the database, never signs, and never lets a
name from the CSR into a certificate (names come from the registry; the CSR may at most echo
them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from devicetrust.pki.errors import (
    CsrBadSignature,
    CsrForbiddenRequest,
    CsrMalformed,
    CsrWeakSignature,
    WeakKey,
)

MAX_CSR_BYTES = 64 * 1024
MIN_RSA_BITS = 2048  # NIST SP 800-131A Rev. 2: 112-bit security at least
MAX_RSA_BITS = 8192  # bounds verification cost
MIN_RSA_EXPONENT = 65537  # NIST SP 800-56B Rev. 2 §6.2
APPROVED_CURVES = frozenset({"secp256r1", "secp384r1", "secp521r1"})  # FIPS 186-5 prime curves
_APPROVED_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
_PEM_MARK = b"-----BEGIN"

DeviceKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey


@dataclass(frozen=True, slots=True)
class VerifiedCsr:
    """A CSR whose signature verified and whose key is approved."""

    public_key: DeviceKey
    spki_sha256: str
    subject: x509.Name
    requested_alt_names: tuple[x509.GeneralName, ...]


def spki_sha256(public_key: DeviceKey) -> str:
    """SHA-256 over the DER SubjectPublicKeyInfo: the key's identity across certificates."""
    der = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def verify_csr(data: bytes | str) -> VerifiedCsr:
    """Steps 1-5 of the module docstring."""
    csr = parse_csr(data)
    _check_proof_of_possession(csr)
    key = check_public_key(csr.public_key())
    _check_signature_hash(csr)
    alt_names = _check_requested_powers(csr)
    return VerifiedCsr(
        public_key=key,
        spki_sha256=spki_sha256(key),
        subject=csr.subject,
        requested_alt_names=alt_names,
    )


def parse_csr(data: bytes | str) -> x509.CertificateSigningRequest:
    if isinstance(data, str):
        data = data.encode("utf-8", errors="replace")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CsrMalformed("a CSR is PEM text or DER bytes")
    raw = bytes(data)
    if not raw:
        raise CsrMalformed("the CSR is empty")
    if len(raw) > MAX_CSR_BYTES:
        raise CsrMalformed(f"a CSR is at most {MAX_CSR_BYTES} bytes", size=len(raw))
    try:
        if _PEM_MARK in raw[:1024]:
            csr = x509.load_pem_x509_csr(raw)
        else:
            csr = x509.load_der_x509_csr(raw)
        # Parsing is lazy: touch the parts the later steps read, so damage shows up here.
        csr.subject.rfc4514_string()
        csr.signature_algorithm_oid  # noqa: B018
    except (ValueError, x509.InvalidVersion) as exc:
        raise CsrMalformed("not a PKCS#10 certificate signing request (RFC 2986)") from exc
    return csr


def _check_proof_of_possession(csr: x509.CertificateSigningRequest) -> None:
    try:
        valid = csr.is_signature_valid
    except UnsupportedAlgorithm as exc:
        raise WeakKey("the CSR's key or signature algorithm is not supported") from exc
    except ValueError as exc:
        raise CsrMalformed("the CSR's key or signature cannot be read") from exc
    if not valid:
        _check_signature_hash(csr)  # a SHA-1 signature is not even verified: say why
        raise CsrBadSignature(
            "the CSR signature does not verify with its key (no proof of possession)"
        )


def check_public_key(public_key: object) -> DeviceKey:
    """Approved device key types and sizes (NIST SP 800-131A Rev. 2, FIPS 186-5)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in APPROVED_CURVES:
            raise WeakKey(
                f"EC curve {public_key.curve.name} is not approved (P-256, P-384, P-521)",
                curve=public_key.curve.name,
            )
        return public_key
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return public_key
    if isinstance(public_key, rsa.RSAPublicKey):
        bits = public_key.key_size
        exponent = public_key.public_numbers().e
        if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
            raise WeakKey(
                f"RSA keys have {MIN_RSA_BITS}-{MAX_RSA_BITS} bits, this one {bits}", bits=bits
            )
        if exponent < MIN_RSA_EXPONENT or exponent % 2 == 0:
            raise WeakKey("the RSA public exponent must be odd and at least 65537")
        return public_key
    raise WeakKey(
        f"{type(public_key).__name__.removeprefix('_')} keys are not accepted "
        "(use ECDSA P-256/P-384/P-521, Ed25519 or RSA >= 2048)",
        key_type=type(public_key).__name__,
    )


def _check_signature_hash(csr: x509.CertificateSigningRequest) -> None:
    if isinstance(csr.public_key(), ed25519.Ed25519PublicKey):
        return  # pure EdDSA: no separate hash (RFC 8410 §6)
    try:
        algorithm = csr.signature_hash_algorithm
    except UnsupportedAlgorithm as exc:
        raise CsrWeakSignature("the CSR's signature hash is not supported") from exc
    if not isinstance(algorithm, _APPROVED_HASHES):
        name = algorithm.name if algorithm is not None else "none"
        raise CsrWeakSignature(
            f"the CSR is signed with {name}; use SHA-256, SHA-384 or SHA-512", hash=name
        )


def _check_requested_powers(
    csr: x509.CertificateSigningRequest,
) -> tuple[x509.GeneralName, ...]:
    """Refuse CA powers; return the alternative names asked for (checked later)."""
    try:
        extensions = list(csr.extensions)
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise CsrMalformed("the CSR's requested extensions cannot be read") from exc
    alt_names: tuple[x509.GeneralName, ...] = ()
    for extension in extensions:
        value = extension.value
        if isinstance(value, x509.BasicConstraints) and value.ca:
            raise CsrForbiddenRequest("the CSR asks for a CA certificate (CA:TRUE)")
        if isinstance(value, x509.KeyUsage) and (value.key_cert_sign or value.crl_sign):
            raise CsrForbiddenRequest("the CSR asks for certificate or CRL signing")
        if isinstance(value, x509.NameConstraints | x509.PolicyConstraints):
            raise CsrForbiddenRequest("the CSR asks for CA constraints")
        if isinstance(value, x509.SubjectAlternativeName):
            alt_names = tuple(value)
    return alt_names


def check_requested_names(
    csr: VerifiedCsr, *, subject: x509.Name, alt_names: Sequence[x509.GeneralName]
) -> None:
    """Step 6: the CSR may leave names out, or echo exactly those the certificate will carry,
    but may not ask for anything else (another CN, an O, an extra SAN of any type)."""
    if len(csr.subject) and csr.subject != subject:
        raise CsrForbiddenRequest(
            "the CSR subject differs from the registered identity (leave it empty or use "
            f"{subject.rfc4514_string()!r})",
            requested=csr.subject.rfc4514_string()[:200],
        )
    allowed = set(alt_names)
    extra = [name for name in csr.requested_alt_names if name not in allowed]
    if extra:
        raise CsrForbiddenRequest(
            "the CSR asks for alternative names the registry does not give this identity",
            requested=[_describe(name) for name in extra[:8]],
        )


def _describe(name: x509.GeneralName) -> str:
    return f"{type(name).__name__}:{str(name.value)[:100]}"

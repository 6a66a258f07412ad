"""Factory registration of a TPM's endorsement key: EK public area and, when the TPM has one,
its EK certificate (TCG EK Credential Profile 2.0).

Checks, in this order (each refusal is `provisioning.tpm_ek_refused`):

1. at least one of public area and certificate
2. the public area (TPM2B_PUBLIC) is an EK: restricted decryption key born in a TPM
3. the certificate parses and chains, through the configured intermediates only, to a
   configured EK root at `at` (`cryptography`'s path builder, `_verified_certificate`):
   - every signature of the path verifies (RSA >= 2048, P-256/P-384, SHA-2), and every
     certificate of it (EK certificate, intermediates, root) is valid at `at`;
   - issuers follow the WebPKI CA profile: basicConstraints CA:TRUE (critical), keyUsage
     keyCertSign, path length and name constraints honoured, at most 8 deep -- except that
     an EKU, when present, names tcg-kp-EKCertificate (not clientAuth);
   - the EK certificate follows the TCG EK Credential Profile 2.0 §3.2 instead of the WebPKI
     end-entity profile (which wants a subject or SAN naming a host and EKU clientAuth, and
     refuses a critical SAN): not a CA, no keyCertSign/cRLSign, an EKU -- when present --
     that names tcg-kp-EKCertificate (2.23.133.8.1), a SAN of TPM attributes allowed
     critical, and no critical extension this check does not understand (RFC 5280 §4.2)
4. certificate and public area carry the same key
5. with a certificate only, the public area is the TCG default template for the certificate's
   key (L-1 RSA 2048, L-2 NIST P-256, H-3 NIST P-384): what a TPM creates for that EK

A certificate without a configured EK trust store is refused (fail closed): the operator names
the TPM vendors' CAs it trusts. A public area without a certificate is accepted on the
factory's word, as the factory read it from the TPM on the production line. Never returns an
`EndorsementKey` whose certificate did not verify.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from devicetrust.domain.errors import ConfigurationError
from devicetrust.pki.csr import spki_sha256
from devicetrust.provisioning._tpm_errors import EndorsementKeyRefused
from devicetrust.provisioning._tpm_objects import TpmKeyRole, TpmPublic, parse_public, tss
from devicetrust.provisioning.errors import AttestationFailed, MalformedEvidence

MAX_EK_CERTIFICATE_BYTES = 8 * 1024
RSA_EK_EXPONENT = 65537  # the TCG templates leave the exponent at 0, i.e. 65537


@dataclass(frozen=True, slots=True)
class EkTrust:
    """The EK certificate authorities the operator trusts (TPM vendors' roots) and the
    intermediates paths may use. Never empty: an empty store would trust nothing silently."""

    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()

    def __post_init__(self) -> None:
        if not self.roots:
            raise ConfigurationError("tpm.ek_trust_empty", "an EK trust store needs a root")


@dataclass(frozen=True, slots=True)
class EndorsementKey:
    """A registered EK: `public` is what an enrollment stores as `tpm_ek_public`."""

    public: bytes  # TPM2B_PUBLIC, marshalled
    certificate: bytes | None  # DER, verified against the EK trust store
    name: bytes
    spki_sha256: str


def register_endorsement_key(
    *,
    public: bytes | None,
    certificate: bytes | None,
    trust: EkTrust | None,
    at: datetime,
) -> EndorsementKey:
    """Steps 1-5 of the module docstring."""
    cert = None if certificate is None else _verified_certificate(certificate, trust, at)
    if public is None and cert is not None:
        public = default_public_area(cert.public_key())
    if public is None:
        raise EndorsementKeyRefused("an EK registration needs the EK public area or certificate")
    ek = _parse_ek(public)
    if cert is not None and spki_sha256(ek.key) != spki_sha256(_ek_key(cert)):
        raise EndorsementKeyRefused("the EK certificate is for another key than the EK public")
    return EndorsementKey(
        public=public, certificate=certificate, name=ek.name, spki_sha256=spki_sha256(ek.key)
    )


def default_public_area(key: CertificatePublicKeyTypes) -> bytes:
    """The TPM2B_PUBLIC a TPM creates from the TCG default EK template for `key`."""
    pytss = tss()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048:
        if key.public_numbers().e != RSA_EK_EXPONENT:
            raise EndorsementKeyRefused("an RSA EK of the TCG template has exponent 65537")
        template = _template(pytss, "EK-RSA2048")
        template.publicArea.unique.rsa = key.public_numbers().n.to_bytes(256, "big")
    elif isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _EC_TEMPLATES:
        template = _template(pytss, _EC_TEMPLATES[key.curve.name])
        size = (key.curve.key_size + 7) // 8
        numbers = key.public_numbers()
        template.publicArea.unique.ecc.x = numbers.x.to_bytes(size, "big")
        template.publicArea.unique.ecc.y = numbers.y.to_bytes(size, "big")
    else:
        raise EndorsementKeyRefused("no TCG EK template for this certificate's key")
    return bytes(template.marshal())


_EC_TEMPLATES = {"secp256r1": "EK-ECC256", "secp384r1": "EK-HIGH-ECC384"}
# TCG EK Credential Profile 2.0 §2.2.1.4/§2.2.1.5: NV index of each type's EK certificate
_CERT_INDEX = {"EK-RSA2048": 0x01C00002, "EK-ECC256": 0x01C0000A, "EK-HIGH-ECC384": 0x01C00016}

TCG_KP_EK_CERTIFICATE = x509.ObjectIdentifier("2.23.133.8.1")
_EK_USAGES = frozenset({TCG_KP_EK_CERTIFICATE, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE})
# The extensions whose meaning the EK check knows; any other marked critical refuses.
_UNDERSTOOD = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    }
)


def _not_a_ca(_: Policy, __: x509.Certificate, ext: x509.BasicConstraints | None) -> None:
    if ext is not None and ext.ca:
        raise ValueError("an EK certificate is not a CA certificate")


def _no_signing_usage(_: Policy, __: x509.Certificate, ext: x509.KeyUsage | None) -> None:
    if ext is not None and (ext.key_cert_sign or ext.crl_sign):
        raise ValueError("an EK certificate does not sign certificates or CRLs")


def _ek_usage(_: Policy, __: x509.Certificate, ext: x509.ExtendedKeyUsage | None) -> None:
    if ext is not None and not _EK_USAGES.intersection(ext):
        raise ValueError("the EK certificate's EKU does not name tcg-kp-EKCertificate")


# TCG EK Credential Profile 2.0 §3.2: an EK certificate's subject may be empty with a critical
# subjectAltName of TPM attributes (directoryName) and the tcg-kp-EKCertificate EKU; the WebPKI
# end-entity policy refuses both, so the leaf gets this policy (module docstring, step 3). The
# CA certificates of the path keep the WebPKI CA policy but for EKU: WebPKI chains the
# verifier's usage (clientAuth) through CA EKUs, whereas EK CAs that carry one name
# tcg-kp-EKCertificate.
_EK_CA_POLICY = ExtensionPolicy.webpki_defaults_ca().may_be_present(
    x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _ek_usage
)
_EK_POLICY = (
    ExtensionPolicy.permit_all()
    .may_be_present(x509.BasicConstraints, Criticality.AGNOSTIC, _not_a_ca)
    .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _no_signing_usage)
    .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _ek_usage)
)


def _verified_certificate(data: bytes, trust: EkTrust | None, at: datetime) -> x509.Certificate:
    if trust is None:
        raise EndorsementKeyRefused("no EK certificate authority is configured to verify it")
    if len(data) > MAX_EK_CERTIFICATE_BYTES:
        raise EndorsementKeyRefused("the EK certificate is too large", size=len(data))
    try:
        cert = x509.load_der_x509_certificate(data)
    except (ValueError, x509.InvalidVersion) as exc:
        raise EndorsementKeyRefused("the EK certificate is not DER X.509") from exc
    unknown = sorted(
        ext.oid.dotted_string
        for ext in _extensions(cert)
        if ext.critical and ext.oid not in _UNDERSTOOD
    )
    if unknown:
        raise EndorsementKeyRefused(
            "the EK certificate has a critical extension this check does not understand",
            extensions=",".join(unknown)[:200],
        )
    verifier = (
        PolicyBuilder()
        .store(Store(list(trust.roots)))
        .time(at)
        .extension_policies(ca_policy=_EK_CA_POLICY, ee_policy=_EK_POLICY)
        .build_client_verifier()
    )
    try:
        verifier.verify(cert, list(trust.intermediates))
    except VerificationError as exc:
        raise EndorsementKeyRefused(
            "the EK certificate does not chain to a trusted EK CA", reason=str(exc)[:200]
        ) from exc
    return cert


def _extensions(cert: x509.Certificate) -> x509.Extensions:
    try:
        return cert.extensions
    except ValueError as exc:  # a duplicate or unparsable extension
        raise EndorsementKeyRefused("the EK certificate's extensions do not parse") from exc


def _ek_key(cert: x509.Certificate) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise EndorsementKeyRefused("the EK certificate holds neither an RSA nor an ECC key")
    return key


def _parse_ek(public: bytes) -> TpmPublic:
    try:
        return parse_public(public, TpmKeyRole.ENDORSEMENT, "ek_public")
    except (MalformedEvidence, AttestationFailed) as exc:
        raise EndorsementKeyRefused(exc.message) from exc


def _template(pytss: Any, ek_type: str) -> Any:
    """The TCG default template for `ek_type`, as a TPM without NV template or nonce uses it
    (the certificate is all we know). tpm2-pytss reads the certificate index first and
    insists on a certificate for high-range types, so the callback says it is there."""
    cert_index = _CERT_INDEX[ek_type]

    def nv(index: int) -> bytes:
        if int(index) == cert_index:
            return b""
        raise pytss.utils.NoSuchIndex(index)

    _, template = pytss.utils.create_ek_template(ek_type, nv)
    return template

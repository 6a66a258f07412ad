"""Signed X.509 structures from to-be-signed bytes and a signature made elsewhere (an HSM).

`cryptography`'s builders sign only with a key they hold. So a structure to be signed in a
token is first built and signed with a throwaway *placeholder* key of the same algorithm:
its signature-algorithm fields are then exactly those the real signature needs, and its
to-be-signed DER is what the token signs. This module swaps the placeholder signature for the
token's one with `asn1crypto` (no hand-written DER), re-parses the result with `cryptography`
and checks that the to-be-signed bytes came through unchanged.

OCSP responses are not assembled here: `cryptography`'s OCSP builder insists that the signing
key match the responder certificate, so no placeholder can stand in (see `Pkcs11CaKey.sign_ocsp`).

Never returns a placeholder-signed object, and never returns a structure whose to-be-signed
bytes differ from those that were signed.
"""

from __future__ import annotations

from asn1crypto import crl as asn1_crl  # type: ignore[import-untyped]
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from devicetrust.pki.keys._errors import HsmFailure


def certificate(placeholder: x509.Certificate, signature: bytes) -> x509.Certificate:
    """RFC 5280 §4.1: Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
    signatureValue }."""
    parsed = asn1_x509.Certificate.load(placeholder.public_bytes(Encoding.DER))
    signed = asn1_x509.Certificate(
        {
            "tbs_certificate": parsed["tbs_certificate"],
            "signature_algorithm": parsed["signature_algorithm"],
            "signature_value": signature,
        }
    )
    result = x509.load_der_x509_certificate(signed.dump())
    _same_tbs(result.tbs_certificate_bytes, placeholder.tbs_certificate_bytes, "certificate")
    return result


def crl(
    placeholder: x509.CertificateRevocationList, signature: bytes
) -> x509.CertificateRevocationList:
    """RFC 5280 §5.1: CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm,
    signatureValue }."""
    parsed = asn1_crl.CertificateList.load(placeholder.public_bytes(Encoding.DER))
    signed = asn1_crl.CertificateList(
        {
            "tbs_cert_list": parsed["tbs_cert_list"],
            "signature_algorithm": parsed["signature_algorithm"],
            "signature": signature,
        }
    )
    result = x509.load_der_x509_crl(signed.dump())
    _same_tbs(result.tbs_certlist_bytes, placeholder.tbs_certlist_bytes, "CRL")
    return result


def _same_tbs(got: bytes, signed: bytes, what: str) -> None:
    if got != signed:
        raise HsmFailure(f"the assembled {what} does not carry the bytes that were signed")

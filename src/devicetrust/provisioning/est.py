"""EST (RFC 7030) wire formats, sans-I/O: what `api/routers/est.py` reads and writes.

    decode_csr(body)              the PKCS#10 of a simpleenroll/simplereenroll body: base64
                                  DER (§4.2.1, line breaks allowed), or PEM; DER bytes out
    encode_certs_only(certs)      a certs-only CMS SignedData (PKCS#7 "degenerate"), DER,
                                  base64 in 64-character lines (§4.1.3, §4.2.3; `EOL`)
    encode_csrattrs(oids)         CsrAttrs (§4.5.2), a SEQUENCE OF OBJECT IDENTIFIER, base64
    parse_basic(header)           (username, password) of an `Authorization: Basic` header

Never touches the network, the database or a key; malformed input raises `EstBodyInvalid`
(`est.malformed_body`, HTTP 400), never a parser's own exception.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence

from asn1crypto import core as asn1_core  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from devicetrust.domain.errors import InvalidInput

PKCS7_MEDIA_TYPE = "application/pkcs7-mime"
CERTS_ONLY_MEDIA_TYPE = "application/pkcs7-mime; smime-type=certs-only"
PKCS10_MEDIA_TYPE = "application/pkcs10"
CSRATTRS_MEDIA_TYPE = "application/csrattrs"
MAX_BODY_BYTES = 64 * 1024
LINE_LENGTH = 64
# LF, not RFC 2045's CRLF: RFC 8951 §3.2.2 makes EST base64 RFC 4648 (CTE is ignored), and
# GNU `base64 -d` -- the obvious client pipe -- rejects CR. Every decoder takes LF.
EOL = b"\n"
_PEM = re.compile(
    rb"-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----(.*?)-----END (?:NEW )?CERTIFICATE REQUEST-----",
    re.DOTALL,
)
_WHITESPACE = re.compile(rb"\s+")


class EstBodyInvalid(InvalidInput):
    """An EST body that is not what RFC 7030 says it is (HTTP 400)."""

    def __init__(self, message: str) -> None:
        super().__init__("est.malformed_body", message)


class _CsrAttrs(asn1_core.SequenceOf):  # type: ignore[misc]
    _child_spec = asn1_core.ObjectIdentifier


def decode_csr(body: bytes) -> bytes:
    """The DER PKCS#10 in an EST enrollment body. Only the framing is checked here (a
    SEQUENCE that parses as a CSR); signature and policy are `pki.csr.verify_csr`'s."""
    if not body or len(body) > MAX_BODY_BYTES:
        raise EstBodyInvalid(f"the body is a base64 PKCS#10 of 1 to {MAX_BODY_BYTES} bytes")
    pem = _PEM.search(body)
    text = pem.group(1) if pem is not None else body
    try:
        der = base64.b64decode(_WHITESPACE.sub(b"", text), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise EstBodyInvalid("the body is not base64 (RFC 7030 §4.2.1)") from exc
    try:
        x509.load_der_x509_csr(der).subject  # noqa: B018  # parsing is lazy: touch it
    except (ValueError, x509.InvalidVersion) as exc:
        raise EstBodyInvalid("the body's base64 does not hold a DER PKCS#10 request") from exc
    return der


def wrap_base64(der: bytes, line_length: int = LINE_LENGTH, eol: bytes = EOL) -> bytes:
    """Base64 with `eol` after every `line_length` characters and at the end."""
    encoded = base64.b64encode(der)
    lines = [encoded[i : i + line_length] for i in range(0, len(encoded), line_length)]
    return b"".join(line + eol for line in lines)


def certs_only_der(certificates: Sequence[x509.Certificate]) -> bytes:
    if not certificates:
        raise ValueError("a certs-only response carries at least one certificate")
    return pkcs7.serialize_certificates(list(certificates), Encoding.DER)


def encode_certs_only(certificates: Sequence[x509.Certificate]) -> bytes:
    """The body of a cacerts/simpleenroll answer: base64 lines of a certs-only PKCS#7."""
    return wrap_base64(certs_only_der(certificates))


def decode_certs_only(body: bytes) -> list[x509.Certificate]:
    """The certificates of a base64 certs-only PKCS#7 (what an EST client does)."""
    try:
        der = base64.b64decode(_WHITESPACE.sub(b"", body), validate=True)
        return pkcs7.load_der_pkcs7_certificates(der)
    except (ValueError, binascii.Error, UnsupportedAlgorithm) as exc:  # another CMS type
        raise EstBodyInvalid("not a base64 certs-only PKCS#7") from exc


def certificates_of(pem: str | bytes) -> list[x509.Certificate]:
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    return x509.load_pem_x509_certificates(data)


def encode_csrattrs(oids: Iterable[str] = ()) -> bytes:
    """CsrAttrs as base64 DER: a SEQUENCE OF the given OIDs (empty: nothing requested)."""
    return wrap_base64(_CsrAttrs([asn1_core.ObjectIdentifier(oid) for oid in oids]).dump())


def decode_csrattrs(body: bytes) -> list[str]:
    try:
        der = base64.b64decode(_WHITESPACE.sub(b"", body), validate=True)
        parsed = _CsrAttrs.load(der, strict=True)
        return [child.dotted for child in parsed]
    except (ValueError, TypeError, binascii.Error) as exc:
        raise EstBodyInvalid("not a base64 CsrAttrs SEQUENCE") from exc


def parse_basic(header: str) -> tuple[str, str] | None:
    """(username, password) of `Basic <base64(user:password)>`, or None when the header is
    not a well-formed Basic credential (RFC 7617; the user id holds no colon)."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep or not user or not password:
        return None
    return user, password


def parse_bearer(header: str) -> str | None:
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()

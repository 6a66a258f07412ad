"""Decoding OCSP requests (RFC 6960 §4.1): a DER OCSPRequest, or the GET form of one
(RFC 6960 Appendix A.1), into the one CertID and the nonce the responder needs.

Owns the limits on what is accepted: request size, one CertID per request, a supported CertID
hash, no unknown critical extension, a nonce of 1 to 32 octets (RFC 8954 §2.1). Never trusts a
field it has not checked, and never lets a decoding error out as anything but
`RequestMalformed` (answered `malformedRequest`) or, for the GET path, `OcspMalformedRequest`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

from devicetrust.domain.errors import InvalidInput

# A single-CertID request with a nonce and a few extensions is ~100-300 bytes; even a signed
# request with a certificate chain stays far below this.
MAX_REQUEST_BYTES = 8192
# RFC 8954 §2.1: a nonce is 1 to 32 octets; longer ones are refused, not truncated.
MAX_NONCE_BYTES = 32


class OcspMalformedRequest(InvalidInput):
    """Raised only by `parse_get_path`; `respond` answers `malformedRequest` instead."""

    CODE: ClassVar[str] = "pki.ocsp_malformed_request"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


def parse_get_path(path_segment: str) -> bytes:
    """The DER OCSPRequest in a GET URL (RFC 6960 Appendix A.1): the URL-encoded base64 of
    the DER, i.e. everything after the responder's base path. Missing `=` padding is
    accepted; anything else that is not base64 is `pki.ocsp_malformed_request`."""
    if len(path_segment) > 3 * MAX_REQUEST_BYTES:
        raise OcspMalformedRequest("OCSP GET request too long")
    try:
        # `unquote`, not `unquote_plus`: in a path a '+' is a base64 character, not a space.
        # Only a leading '/' is the path's: a trailing one is base64 (the router has
        # already decoded %2F), and a DER OCSPRequest's base64 never starts with '/'.
        text = unquote(path_segment.removeprefix("/"), errors="strict")
        text += "=" * (-len(text) % 4)
        der = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeError, binascii.Error, ValueError) as exc:
        raise OcspMalformedRequest("OCSP GET path is not base64") from exc
    if not der:
        raise OcspMalformedRequest("empty OCSP GET request")
    return der


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    algorithm: hashes.HashAlgorithm
    name_hash: bytes
    key_hash: bytes
    serial: int
    nonce: bytes | None


class RequestMalformed(Exception):
    """Why a request is answered `malformedRequest` (for the log; never raised to callers)."""


def parse_request(der: bytes) -> ParsedRequest:
    """The one CertID and the nonce of a DER OCSPRequest, or `RequestMalformed`."""
    if not der:
        raise RequestMalformed("empty request")
    if len(der) > MAX_REQUEST_BYTES:
        raise RequestMalformed(f"request of {len(der)} bytes exceeds {MAX_REQUEST_BYTES}")
    try:
        # cryptography parses single-CertID requests only; a requestList of several raises
        # NotImplementedError and is answered malformedRequest (documented limitation).
        request = ocsp.load_der_ocsp_request(der)
        algorithm = request.hash_algorithm
        extensions = request.extensions
        name_hash, key_hash = request.issuer_name_hash, request.issuer_key_hash
        serial = request.serial_number
    except (ValueError, NotImplementedError, UnsupportedAlgorithm) as exc:
        raise RequestMalformed(str(exc)[:200]) from exc
    nonce: bytes | None = None
    for extension in extensions:
        if isinstance(extension.value, x509.OCSPNonce):
            nonce = extension.value.nonce
        elif extension.critical:
            # RFC 6960 §4.4: unrecognised extensions are ignored unless critical.
            raise RequestMalformed(f"unsupported critical extension {extension.oid.dotted_string}")
    if nonce is not None and not 1 <= len(nonce) <= MAX_NONCE_BYTES:
        raise RequestMalformed(f"nonce of {len(nonce)} bytes (RFC 8954: 1 to {MAX_NONCE_BYTES})")
    return ParsedRequest(algorithm, name_hash, key_hash, serial, nonce)

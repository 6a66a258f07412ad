"""The OCSP responder (RFC 6960): signed answers to "is this certificate still good?" for the
certificates of the platform's issuing CAs. Sans-I/O: DER request in, DER response out; the
HTTP layer (POST body or GET path, RFC 6960 Appendix A) belongs to the API.

    responder = OcspResponder([(issuing_ca, ocsp_signer_cert, ocsp_signer_key)], status, clock)
    response_der = responder.respond(request_der)             # POST body
    response_der = responder.respond_get(path_after_prefix)   # GET /ocsp/<base64 DER>

Order of work for one request: parse (size, DER, one CertID, supported hash, extensions, nonce
length) -> match issuerNameHash/issuerKeyHash to a configured issuing CA -> pick the signer
valid now -> ask the `StatusSource` -> reuse a cached signature or sign -> DER.

Never answers GOOD unless the `StatusSource` said GOOD just now: every request reads the
status, and a cached response is reused only when the status it was signed for equals the
status just read, so a revocation shows at the very next request even if nobody calls
`invalidate`. Never raises on bad input: a malformed request gets `malformedRequest`, an issuer
it does not serve `unauthorized`, a signing failure `internalError`.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import ConfigurationError, DeviceTrustError
from devicetrust.pki._ocsp_request import (
    MAX_NONCE_BYTES,
    MAX_REQUEST_BYTES,
    OcspMalformedRequest,
    ParsedRequest,
    RequestMalformed,
    parse_get_path,
    parse_request,
)
from devicetrust.pki.keys import CaKey
from devicetrust.pki.status import CertStatus, StatusInfo, StatusSource

__all__ = [
    "DEFAULT_CACHE_ENTRIES",
    "DEFAULT_CACHE_TTL",
    "DEFAULT_VALIDITY",
    "MAX_NONCE_BYTES",
    "MAX_REQUEST_BYTES",
    "OCSP_REQUEST_MEDIA_TYPE",
    "OCSP_RESPONSE_MEDIA_TYPE",
    "OcspConfigInvalid",
    "OcspMalformedRequest",
    "OcspResponder",
    "parse_get_path",
]

_log = logging.getLogger(__name__)

OCSP_REQUEST_MEDIA_TYPE = "application/ocsp-request"
OCSP_RESPONSE_MEDIA_TYPE = "application/ocsp-response"
DEFAULT_VALIDITY = timedelta(hours=1)
DEFAULT_CACHE_TTL = timedelta(minutes=1)
DEFAULT_CACHE_ENTRIES = 65_536

# The CertID hashes a client may use (RFC 6960 §4.1.1; SHA-1 is what most clients send).
_CERT_ID_HASHES: tuple[hashes.HashAlgorithm, ...] = (
    hashes.SHA1(),  # noqa: S303 - CertID only identifies the issuer; RFC 6960 §4.1.1, RFC 5019
    hashes.SHA224(),
    hashes.SHA256(),
    hashes.SHA384(),
    hashes.SHA512(),
)


class OcspConfigInvalid(ConfigurationError):
    """The responder was set up with a signer it must not use, or impossible lifetimes."""

    CODE: ClassVar[str] = "pki.ocsp_config_invalid"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    response = ocsp.OCSPResponseBuilder.build_unsuccessful(status)
    return response.public_bytes(serialization.Encoding.DER)


_MALFORMED_RESPONSE = _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
_UNAUTHORIZED = _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
_INTERNAL_ERROR = _unsuccessful(ocsp.OCSPResponseStatus.INTERNAL_ERROR)

_OCSP_STATUS = {
    CertStatus.GOOD: ocsp.OCSPCertStatus.GOOD,
    CertStatus.REVOKED: ocsp.OCSPCertStatus.REVOKED,
    CertStatus.UNKNOWN: ocsp.OCSPCertStatus.UNKNOWN,
}


@dataclass(frozen=True, slots=True)
class _Signer:
    certificate: x509.Certificate
    key: CaKey
    delegated: bool


@dataclass(frozen=True, slots=True)
class _Issuer:
    index: int
    certificate: x509.Certificate
    signers: tuple[_Signer, ...]

    def signer_at(self, now: datetime) -> _Signer | None:
        """The valid signer certified most recently (rotation: old and new side by side)."""
        valid = [
            s
            for s in self.signers
            if s.certificate.not_valid_before_utc <= now <= s.certificate.not_valid_after_utc
        ]
        return max(valid, key=lambda s: s.certificate.not_valid_before_utc, default=None)


@dataclass(frozen=True, slots=True)
class _Cached:
    status: StatusInfo
    signer: _Signer
    produced: datetime
    der: bytes


class _ResponseCache:
    """Signed nonce-less responses, LRU-bounded. An entry serves only while its status equals
    the one just read, its signer is the current one, and it is younger than `ttl`."""

    def __init__(self, ttl: timedelta, max_entries: int) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[int, str, int], _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, key: tuple[int, str, int], status: StatusInfo, signer: _Signer, now: datetime
    ) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            fresh = entry.produced <= now < entry.produced + self._ttl
            if fresh and entry.status == status and entry.signer is signer:
                self._entries.move_to_end(key)
                return entry.der
            del self._entries[key]
            return None

    def put(self, key: tuple[int, str, int], entry: _Cached) -> None:
        if self._max_entries <= 0 or self._ttl <= timedelta(0):
            return
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def invalidate(self, serial: int) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[2] == serial]:
                del self._entries[key]


class OcspResponder:
    """Answers OCSP requests for the configured issuing CAs.

    `issuers` holds, per issuing CA, `(issuer certificate, OCSP signer certificate, signer
    key)`: a delegated responder certificate issued by that CA with EKU OCSPSigning (RFC 6960
    §4.2.2.2), or the CA certificate itself with the CA key. Several entries for one CA are
    rotation: the valid signer certified most recently signs.

    Responses are valid `validity` from now (capped at the signer's expiry). Nonce-less
    responses are cached up to `cache_ttl` (0 disables); see the module docstring for why a
    cache entry can never hide a revocation. `invalidate(serial)` drops cached responses early,
    e.g. so the next answer after a revocation carries a fresh thisUpdate.
    """

    def __init__(
        self,
        issuers: Sequence[tuple[x509.Certificate, x509.Certificate, CaKey]],
        status: StatusSource,
        clock: Clock,
        *,
        validity: timedelta = DEFAULT_VALIDITY,
        cache_ttl: timedelta = DEFAULT_CACHE_TTL,
        cache_entries: int = DEFAULT_CACHE_ENTRIES,
    ) -> None:
        if not issuers:
            raise OcspConfigInvalid("an OCSP responder needs at least one issuing CA")
        if validity <= timedelta(0):
            raise OcspConfigInvalid("OCSP response validity must be positive")
        if cache_ttl >= validity:
            raise OcspConfigInvalid("the OCSP cache lifetime must be shorter than the validity")
        self._status = status
        self._clock = clock
        self._validity = validity
        self._cache = _ResponseCache(cache_ttl, cache_entries)
        self._by_cert_id: dict[tuple[str, bytes, bytes], _Issuer] = {}
        grouped: dict[bytes, list[tuple[x509.Certificate, _Signer]]] = {}
        for issuer_cert, signer_cert, key in issuers:
            signer = _checked_signer(issuer_cert, signer_cert, key)
            der = issuer_cert.public_bytes(serialization.Encoding.DER)
            grouped.setdefault(der, []).append((issuer_cert, signer))
        for index, entries in enumerate(grouped.values()):
            issuer = _Issuer(index, entries[0][0], tuple(s for _, s in entries))
            for algorithm in _CERT_ID_HASHES:
                self._by_cert_id[_cert_id(issuer.certificate, algorithm)] = issuer

    def respond(self, request_der: bytes) -> bytes:
        """The DER OCSPResponse for a DER OCSPRequest (the body of an HTTP POST)."""
        try:
            request = parse_request(request_der)
        except RequestMalformed as exc:
            _log.info("OCSP request answered malformedRequest: %s", exc)
            return _MALFORMED_RESPONSE
        issuer = self._by_cert_id.get((request.algorithm.name, request.name_hash, request.key_hash))
        if issuer is None:
            _log.info("OCSP request for an issuer this responder does not serve")
            return _UNAUTHORIZED
        now = self._clock.now()
        signer = issuer.signer_at(now)
        if signer is None:
            _log.error(
                "no valid OCSP signer certificate for issuer %s at %s: rotate the signer",
                issuer.certificate.subject.rfc4514_string(),
                now.isoformat(),
            )
            return _INTERNAL_ERROR
        status = self._status.status_of(issuer.certificate, request.serial)
        if status.serial != request.serial:
            _log.error(
                "status source answered for serial %x, asked %x", status.serial, request.serial
            )
            return _INTERNAL_ERROR
        cache_key = (issuer.index, request.algorithm.name, request.serial)
        if request.nonce is None:
            cached = self._cache.get(cache_key, status, signer, now)
            if cached is not None:
                return cached
        try:
            der = self._sign(request, status, signer, now)
        except DeviceTrustError:
            _log.exception("OCSP response for serial %x could not be signed", request.serial)
            return _INTERNAL_ERROR
        if request.nonce is None:
            self._cache.put(cache_key, _Cached(status, signer, now, der))
        return der

    def respond_get(self, path_segment: str) -> bytes:
        """The DER OCSPResponse for an HTTP GET (RFC 6960 Appendix A.1); `path_segment` is the
        URL path after the responder's base path."""
        try:
            der = parse_get_path(path_segment)
        except OcspMalformedRequest as exc:
            _log.info("OCSP GET answered malformedRequest: %s", exc.message)
            return _MALFORMED_RESPONSE
        return self.respond(der)

    def invalidate(self, serial: int) -> None:
        """Drop cached responses for `serial` (any issuer). Not needed for correctness."""
        self._cache.invalidate(serial)

    def _sign(
        self, request: ParsedRequest, status: StatusInfo, signer: _Signer, now: datetime
    ) -> bytes:
        if status.status is CertStatus.REVOKED and status.revoked_at is None:
            raise OcspConfigInvalid("the status source reports a revocation without a time")
        # RFC 5280 §4.1.2.5.2: GeneralizedTime without fractional seconds.
        this_update = now.replace(microsecond=0)
        next_update = min(this_update + self._validity, signer.certificate.not_valid_after_utc)
        revoked = status.status is CertStatus.REVOKED
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=request.name_hash,
                issuer_key_hash=request.key_hash,
                serial_number=request.serial,
                algorithm=request.algorithm,
                cert_status=_OCSP_STATUS[status.status],
                this_update=this_update,
                next_update=next_update,
                revocation_time=status.revoked_at if revoked else None,
                revocation_reason=status.reason if revoked else None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, signer.certificate)
        )
        if signer.delegated:
            # RFC 6960 §4.2.2.2: the client needs the delegation certificate to check it.
            builder = builder.certificates([signer.certificate])
        if request.nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(request.nonce), critical=False)
        return signer.key.sign_ocsp(builder).public_bytes(serialization.Encoding.DER)


def _cert_id(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[str, bytes, bytes]:
    """RFC 6960 §4.1.1 CertID hashes of an issuer: of its subject's DER, and of its
    subjectPublicKey BIT STRING (taken from `cryptography`'s own CertID, whose name hash is
    of the certificate's *issuer* field, hence the issuer is passed as both)."""
    name_hash = hashes.Hash(algorithm)
    name_hash.update(issuer.subject.public_bytes())
    key_hash = (
        ocsp.OCSPRequestBuilder().add_certificate(issuer, issuer, algorithm).build().issuer_key_hash
    )
    return algorithm.name, name_hash.finalize(), key_hash


def _spki(public_key: Any) -> bytes:
    der: bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def _checked_signer(issuer: x509.Certificate, signer: x509.Certificate, key: CaKey) -> _Signer:
    """RFC 6960 §4.2.2.2: a delegated signer is certified directly by the CA it answers for
    and carries EKU id-kp-OCSPSigning; the key must be the certificate's."""
    subject = signer.subject.rfc4514_string()
    if _spki(key.public_key()) != _spki(signer.public_key()):
        raise OcspConfigInvalid(
            "the OCSP signer key does not match its certificate", signer=subject
        )
    if signer == issuer:
        return _Signer(signer, key, delegated=False)
    try:
        signer.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise OcspConfigInvalid(
            "the OCSP signer certificate is not issued by its CA", signer=subject
        ) from exc
    try:
        usages = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = x509.ExtendedKeyUsage([])
    if ExtendedKeyUsageOID.OCSP_SIGNING not in usages:
        raise OcspConfigInvalid(
            "the OCSP signer certificate lacks EKU id-kp-OCSPSigning", signer=subject
        )
    return _Signer(signer, key, delegated=True)

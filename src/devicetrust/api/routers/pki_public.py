"""The CA's public endpoints, at the URLs written into every certificate (`PkiPolicy`):

    GET  /pki/crl/{ca_id}.crl      the CA's latest CRL, DER      (CRL distribution point)
    GET  /pki/ca/{ca_id}.crt       the CA's certificate, DER     (AIA caIssuers)
    POST /pki/ocsp                 OCSP, DER request in the body (AIA OCSP, RFC 6960 App. A.1)
    GET  /pki/ocsp/{base64 DER}    OCSP, URL-encoded base64 request in the path

Open to anyone, each saying why: relying parties (devices, brokers, `openssl`) fetch them
without an operator credential, and everything served is public and signed. Never writes,
and never answers OCSP from anything but the CA's records read for that request: the
responder is cached per app, its answers are not (see `devicetrust.pki.ocsp`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from fastapi import APIRouter, Depends, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from devicetrust.api.platform import PlatformDep
from devicetrust.api.problems import problem
from devicetrust.api.security import allow_insecure
from devicetrust.domain.errors import ConfigurationError, DeviceTrustError, NotFound
from devicetrust.pki import CaRole, CaStatus, PkiService
from devicetrust.pki.keys import CaKey
from devicetrust.pki.ocsp import OCSP_REQUEST_MEDIA_TYPE, OCSP_RESPONSE_MEDIA_TYPE, OcspResponder
from devicetrust.runtime.container import Platform

_log = logging.getLogger(__name__)

router = APIRouter(prefix="/pki", tags=["certificate authority (public)"])

PKIX_CRL = "application/pkix-crl"  # RFC 2585 §4.2
PKIX_CERT = "application/pkix-cert"  # RFC 2585 §4.1
# A responder also picks up renewed OCSP signer certificates this often (signers are renewed
# with a third of their life left, so the old one is still valid meanwhile).
REBUILD_AFTER = timedelta(minutes=5)
CaIdPath = Annotated[str, Path(min_length=1, max_length=64)]

_RELYING_PARTIES = "relying parties fetch revocation data and CA certificates without credentials"


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(Encoding.DER)


# RFC 6960 §2.3: "unauthorized" when the responder cannot answer for that CA (here: no CA
# yet); "internalError" when it cannot be set up now (e.g. a CA key that does not open).
_UNAUTHORIZED = _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
_INTERNAL_ERROR = _unsuccessful(ocsp.OCSPResponseStatus.INTERNAL_ERROR)


@dataclass(frozen=True, slots=True)
class _Built:
    cas: tuple[tuple[str, CaStatus], ...]
    at: datetime
    responder: OcspResponder | None


class OcspResponders:
    """The app's `OcspResponder`, built from the CA's records and rebuilt when the set of
    issuing and manufacturing CAs changes (init, rotation, import: one small read per request
    tells) or when it is older than `REBUILD_AFTER`. Thread-safe."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self._lock = threading.Lock()
        self._built: _Built | None = None

    def respond(self, request_der: bytes) -> bytes:
        try:
            responder = self._current()
        except DeviceTrustError as exc:
            _log.error("OCSP responder cannot be set up: %s", exc.code)
            return _INTERNAL_ERROR
        return _UNAUTHORIZED if responder is None else responder.respond(request_der)

    def respond_get(self, path_segment: str) -> bytes:
        try:
            responder = self._current()
        except DeviceTrustError as exc:
            _log.error("OCSP responder cannot be set up: %s", exc.code)
            return _INTERNAL_ERROR
        return _UNAUTHORIZED if responder is None else responder.respond_get(path_segment)

    def _current(self) -> OcspResponder | None:
        pki = self._platform.pki
        cas = tuple((ca.ca_id, ca.status) for ca in pki.list_cas() if ca.role is not CaRole.ROOT)
        now = pki.clock.now()
        with self._lock:
            built = self._built
            if built is None or built.cas != cas or not built.at <= now < built.at + REBUILD_AFTER:
                built = _Built(cas, now, _build(pki, [ca_id for ca_id, _ in cas]))
                self._built = built
            return built.responder


def _build(pki: PkiService, ca_ids: list[str]) -> OcspResponder | None:
    """One responder for every issuing and manufacturing CA that has a valid delegated
    signer (a retired CA keeps one while what it issued is unexpired)."""
    issuers: list[tuple[x509.Certificate, x509.Certificate, CaKey]] = []
    for ca_id in ca_ids:
        try:
            signer = pki.ocsp_signer(ca_id)
        except NotFound as exc:
            _log.info("CA %s is not served by OCSP: %s", ca_id, exc.code)
            continue
        issuers.append((signer.issuer, signer.certificate, pki.ocsp_signing_key(signer)))
    if not issuers:
        return None
    return OcspResponder(issuers, pki.status_source(), pki.clock)


def responders_of(request: Request) -> OcspResponders:
    found = getattr(request.app.state, "ocsp_responders", None)
    if not isinstance(found, OcspResponders):
        raise ConfigurationError("config.no_ocsp", "the API app was built without OCSP")
    return found


Responders = Annotated[OcspResponders, Depends(responders_of)]


@router.get(
    "/crl/{ca_id}.crl",
    summary="The CA's latest CRL (DER)",
    response_class=Response,
    include_in_schema=False,
    dependencies=[allow_insecure(_RELYING_PARTIES)],
)
def crl(ca_id: CaIdPath, platform: PlatformDep) -> Response:
    # no-cache: a cache may keep it, but must ask again, so a new revocation shows at once.
    return Response(
        platform.pki.latest_crl(ca_id), media_type=PKIX_CRL, headers={"Cache-Control": "no-cache"}
    )


@router.get(
    "/ca/{ca_id}.crt",
    summary="The CA's certificate (DER)",
    response_class=Response,
    include_in_schema=False,
    dependencies=[allow_insecure(_RELYING_PARTIES)],
)
def ca_certificate(ca_id: CaIdPath, platform: PlatformDep) -> Response:
    return Response(platform.pki.get_ca(ca_id).der, media_type=PKIX_CERT)


@router.post(
    "/ocsp",
    summary="OCSP over POST (RFC 6960 Appendix A.1)",
    response_class=Response,
    include_in_schema=False,
    dependencies=[allow_insecure(_RELYING_PARTIES)],
)
async def ocsp_post(request: Request, responders: Responders) -> Response:
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != OCSP_REQUEST_MEDIA_TYPE:
        return problem(
            415,
            "request.unsupported_media_type",
            f"an OCSP request is sent as Content-Type: {OCSP_REQUEST_MEDIA_TYPE}",
        )
    body = await request.body()
    return _ocsp_response(await run_in_threadpool(responders.respond, body))


@router.get(
    "/ocsp/{encoded:path}",
    summary="OCSP over GET (RFC 6960 Appendix A.1)",
    response_class=Response,
    include_in_schema=False,
    dependencies=[allow_insecure(_RELYING_PARTIES)],
)
def ocsp_get(encoded: str, responders: Responders) -> Response:
    return _ocsp_response(responders.respond_get(encoded))


def _ocsp_response(der: bytes) -> Response:
    # Every answer is a signed OCSPResponse with HTTP 200, errors included (RFC 6960 §2.3).
    # no-store: an HTTP cache must never hand out a GOOD that the CA has since revoked.
    return Response(der, media_type=OCSP_RESPONSE_MEDIA_TYPE, headers={"Cache-Control": "no-store"})

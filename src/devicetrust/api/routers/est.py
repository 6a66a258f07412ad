"""EST (RFC 7030) on `/.well-known/est/`, for clients we did not write (curl + openssl, EST
libraries):

    GET  cacerts         the issuing CA and every CA above it, certs-only PKCS#7, base64
    GET  csrattrs        CsrAttrs (empty: the CA takes the names from the registry)
    POST simpleenroll    base64 PKCS#10 in, the issued certificate as certs-only PKCS#7 out
    POST simplereenroll  the same, for a unit that already holds a certificate

Authentication (§3.2.3): HTTP Basic with username = the physical id and password = a
symmetric-key provisioning token (`provisioning.symmetric.encode_token`), or
`Authorization: Bearer <token>` (the physical id is then the token's `registration_id`).
Both go to `ProvisioningService.provision` as a symmetric-key registration: the service
verifies, rate-limits, burns the token's nonce and audits; an enrollment is a provisioning
and a re-enrollment is a re-provisioning (the unit gets its current assignment back and a
new certificate).

simplereenroll also takes the TLS client certificate (§3.3.2, §4.2.2) when `devicetrust serve`
runs HTTPS with `[server] tls_client_certs = "optional"`: a request without an Authorization
header whose connection presented a certificate (ASGI TLS extension, `api.tls`) is a renewal
by `provisioning.reenroll.CertificateReenrollment` -- the chain is verified again against the
platform's root and issuing CAs and its revocation state, then the CA renews it with the
CSR's key and the registry's names. A refused certificate gets 401 `auth.cert_refused` with
one message whatever the reason (the audit entry has the precise code). simpleenroll never
takes a certificate: a first enrollment proves a provisioning credential. A certificate
header set by a TLS-terminating proxy is not trusted (no setting names such a proxy).

Answers (§4.2.3): 200 with the certificate; 202 + Retry-After while an operator has to
approve the unit; 401 + `WWW-Authenticate: Basic realm="devicetrust EST"` for a missing or
refused credential; 400 for a malformed body (after the credential is checked, so that the
refusal is audited against the unit and the token is not burnt); 429 + Retry-After when
rate-limited; other refusals as the other device routes (problem+json).
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from devicetrust.api import problems
from devicetrust.api.platform import PlatformDep
from devicetrust.api.security import allow_insecure
from devicetrust.api.tls import client_certificate_chain
from devicetrust.domain.errors import InvalidInput, Unauthorized
from devicetrust.domain.ids import PhysicalId
from devicetrust.pki.verify import CertificateRefused
from devicetrust.provisioning import (
    AttestationKind,
    MalformedEvidence,
    ProvisioningResult,
    RateLimited,
    RegistrationRequest,
    RegistrationStatus,
)
from devicetrust.provisioning.est import (
    CERTS_ONLY_MEDIA_TYPE,
    CSRATTRS_MEDIA_TYPE,
    PKCS7_MEDIA_TYPE,
    PKCS10_MEDIA_TYPE,
    EstBodyInvalid,
    certificates_of,
    decode_csr,
    encode_certs_only,
    encode_csrattrs,
    parse_basic,
    parse_bearer,
)
from devicetrust.provisioning.symmetric import decode_token

router = APIRouter(prefix="/.well-known/est", tags=["EST (RFC 7030)"])

REALM = 'Basic realm="devicetrust EST"'
_PUBLIC = "EST clients fetch the CA certificates and CSR attributes before they hold a credential"
_DEVICE = (
    "EST devices hold no operator credential: they authenticate with HTTP Basic (physical id "
    "and a symmetric-key provisioning token) or a bearer token, which the provisioning "
    "service verifies, rate-limits and audits"
)
_DEVICE_OR_CERTIFICATE = (
    f"{_DEVICE}; or with the TLS client certificate it holds, which the re-enrollment "
    "service verifies against the platform's CAs and revocation state, rate-limits and audits"
)
_BASE64 = {"Content-Transfer-Encoding": "base64"}
_PENDING: dict[int | str, dict[str, Any]] = {
    202: {"description": "Pending operator approval: retry after `Retry-After` seconds"}
}


def _source(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _unauthorized(code: str, detail: str) -> problems.ProblemResponse:
    return problems.problem(401, code, detail, headers={"WWW-Authenticate": REALM})


@router.get(
    "/cacerts",
    summary="The CA certificates (certs-only PKCS#7, base64)",
    response_class=Response,
    dependencies=[allow_insecure(_PUBLIC)],
)
def cacerts(platform: PlatformDep) -> Response:
    body = encode_certs_only(certificates_of(platform.pki.chain_pem()))
    return Response(body, media_type=PKCS7_MEDIA_TYPE, headers=_BASE64)


@router.get(
    "/csrattrs",
    summary="CSR attributes the CA wants (none: names come from the registry)",
    response_class=Response,
    dependencies=[allow_insecure(_PUBLIC)],
)
def csrattrs() -> Response:
    return Response(encode_csrattrs(), media_type=CSRATTRS_MEDIA_TYPE, headers=_BASE64)


@router.post(
    "/simpleenroll",
    summary="Enroll: a base64 PKCS#10 in, the issued certificate out",
    response_class=Response,
    responses=_PENDING,
    dependencies=[allow_insecure(_DEVICE)],
)
async def simpleenroll(request: Request, platform: PlatformDep) -> Response:
    return await _enroll(request, platform)


@router.post(
    "/simplereenroll",
    summary="Re-enroll: a new certificate for a unit that holds one (TLS client certificate "
    "or token)",
    response_class=Response,
    responses=_PENDING,
    dependencies=[allow_insecure(_DEVICE_OR_CERTIFICATE)],
)
async def simplereenroll(request: Request, platform: PlatformDep) -> Response:
    chain = client_certificate_chain(request.scope)
    if chain and "authorization" not in request.headers:
        return await _reenroll_by_certificate(request, platform, chain)
    return await _enroll(request, platform)


async def _reenroll_by_certificate(
    request: Request, platform: PlatformDep, chain: list[str]
) -> Response:
    refusal = _unsupported_media(request)
    if refusal is not None:
        return refusal
    csr, malformed = _csr_of(await request.body())
    presented = "".join(chain).encode("ascii")
    try:
        issued = await run_in_threadpool(
            platform.reenrollment.reenroll, presented, csr, source=_source(request)
        )
    except RateLimited as exc:
        return _too_many(exc)
    except CertificateRefused:
        return _unauthorized(CertificateRefused.CODE, CertificateRefused.PUBLIC_MESSAGE)
    except InvalidInput:
        if malformed is None:
            raise
        return problems.problem(400, malformed.code, malformed.message)
    body = encode_certs_only(certificates_of(issued.pem))
    return Response(body, media_type=CERTS_ONLY_MEDIA_TYPE, headers=_BASE64)


def _credential(request: Request) -> tuple[str, str] | None:
    """(physical id, token) from Basic or Bearer; None when neither is usable."""
    header = request.headers.get("authorization", "")
    basic = parse_basic(header)
    if basic is not None:
        return basic
    token = parse_bearer(header)
    if token is None:
        return None
    try:
        claims = decode_token(token)[2]
    except MalformedEvidence:
        return None
    return str(claims["registration_id"]), token


async def _enroll(request: Request, platform: PlatformDep) -> Response:
    credential = _credential(request)
    if credential is None:
        return _unauthorized(
            "est.credential_missing",
            "EST enrollment needs HTTP Basic (physical id, provisioning token) or a bearer token",
        )
    refusal = _unsupported_media(request)
    if refusal is not None:
        return refusal
    csr, malformed = _csr_of(await request.body())
    attempt = RegistrationRequest(
        physical_id=PhysicalId(credential[0][:64]),
        method=AttestationKind.SYMMETRIC_KEY,
        csr=csr,
        evidence={"token": credential[1]},
        source=_source(request),
    )
    try:
        result = await run_in_threadpool(platform.provisioning.provision, attempt)
    except RateLimited as exc:
        return _too_many(exc)
    except Unauthorized as exc:
        return _unauthorized(exc.code, exc.message)
    except InvalidInput:
        if malformed is None:
            raise
        return problems.problem(400, malformed.code, malformed.message)
    return _answer(result)


def _unsupported_media(request: Request) -> Response | None:
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type == PKCS10_MEDIA_TYPE:
        return None
    return problems.problem(
        415,
        "request.unsupported_media_type",
        f"an EST enrollment is sent as Content-Type: {PKCS10_MEDIA_TYPE}",
    )


def _csr_of(body: bytes) -> tuple[bytes, EstBodyInvalid | None]:
    """The DER CSR, or an empty one and why: the service checks the credential first, then
    refuses the CSR (audited, nothing burnt), so a wrong credential still gets its 401."""
    try:
        return decode_csr(body), None
    except EstBodyInvalid as exc:
        return b"", exc


def _too_many(exc: RateLimited) -> Response:
    return problems.problem(
        429, exc.code, exc.message, headers={"Retry-After": str(exc.retry_after)}
    )


def _answer(result: ProvisioningResult) -> Response:
    if result.status is RegistrationStatus.PENDING or result.certificate_pem is None:
        return Response(status_code=202, headers={"Retry-After": str(result.retry_after or 30)})
    issued: list[x509.Certificate] = certificates_of(result.certificate_pem)
    return Response(encode_certs_only(issued), media_type=CERTS_ONLY_MEDIA_TYPE, headers=_BASE64)

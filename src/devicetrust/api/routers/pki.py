"""The certificate authority for operators: create, rotate and import CAs, download chains,
issue certificates from CSRs, list, download (JSON, PEM or DER) and revoke them.

Every route needs `pki:read` or `pki:write`; the CA service judges every input (CSR, names,
lifetimes, serials, reasons) and records every change with its audit entry. The public
endpoints written into certificates (CRL, CA certificate, OCSP) are in `pki_public`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path as FsPath
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Header, Path, Query, Response, status

from devicetrust.api.paging import Offset
from devicetrust.api.pki_schemas import (
    CaList,
    CaOut,
    CertificateDetailOut,
    CertificateList,
    CertificateOut,
    CertificatePage,
    HierarchyOut,
    ImportIn,
    InitIn,
    IssueIn,
    RevokeAllIn,
    RevokeIn,
    RotateIn,
)
from devicetrust.api.platform import PlatformDep
from devicetrust.api.security import requires
from devicetrust.auth import ApiKey, Scope
from devicetrust.pki import CaRole, IssuedCertificate, PkiService, Profile
from devicetrust.pki.keys import InvalidKeyUri, KeyAlgorithm

router = APIRouter(prefix="/v1/pki", tags=["certificate authority"])

Reader = Annotated[ApiKey, requires(Scope.PKI_READ)]
Writer = Annotated[ApiKey, requires(Scope.PKI_WRITE)]
SerialPath = Annotated[
    str, Path(min_length=1, max_length=128, description="hex, as `openssl x509 -serial` prints")
]

JSON = "application/json"
PEM_CHAIN = "application/pem-certificate-chain"  # RFC 8555 §9.1: leaf first, then its issuers
PKIX_CERT = "application/pkix-cert"  # RFC 2585 §4.1: one DER certificate
_MAX_CHAIN_DEPTH = 8  # root -> intermediate -> leaf, plus room for an imported company chain
_CERT_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            PEM_CHAIN: {"schema": {"type": "string"}},
            PKIX_CERT: {"schema": {"type": "string", "format": "binary"}},
        },
        "description": "JSON, or by `Accept`: PEM chain or DER certificate",
    }
}


@router.post(
    "/init",
    status_code=status.HTTP_201_CREATED,
    summary="Create the CA hierarchy: root, issuing and manufacturing CAs (409 if it exists)",
)
def init(key: Writer, platform: PlatformDep, body: InitIn | None = None) -> HierarchyOut:
    algorithm = (body.algorithm if body else None) or KeyAlgorithm.parse(
        platform.settings.pki.algorithm
    )
    return HierarchyOut.of(platform.pki.init_hierarchy(actor=key.actor, algorithm=algorithm))


@router.get("/cas", summary="Every CA, active and retired, oldest first")
def list_cas(_key: Reader, platform: PlatformDep) -> CaList:
    return CaList(items=[CaOut.of(ca) for ca in platform.pki.list_cas()])


@router.post(
    "/cas/rotate-intermediate",
    status_code=status.HTTP_201_CREATED,
    summary="Replace the issuing (or manufacturing) CA by a new key certified by the root",
)
def rotate_intermediate(key: Writer, platform: PlatformDep, body: RotateIn | None = None) -> CaOut:
    wanted = body or RotateIn()
    ca = platform.pki.rotate_intermediate(
        actor=key.actor, role=wanted.role, algorithm=wanted.algorithm
    )
    return CaOut.of(ca)


@router.post(
    "/cas/import",
    status_code=status.HTTP_201_CREATED,
    summary="Import a company CA (certificate and encrypted key, or a key URI)",
)
def import_ca(body: ImportIn, key: Writer, platform: PlatformDep) -> CaOut:
    password = body.key_password.get_secret_value().encode() if body.key_password else None
    ca = platform.pki.import_external_ca(
        body.certificate_pem,
        role=body.role,
        actor=key.actor,
        key_uri=_confined(body.key_uri, platform.settings.pki_key_dir),
        key_pem=body.key_pem.encode() if body.key_pem else None,
        key_pem_password=password,
        chain_pem=body.chain_pem,
    )
    return CaOut.of(ca)


def _confined(key_uri: str | None, key_dir: FsPath) -> str | None:
    """Over the API a `file:` key URI names a file in the CA key directory: a remote caller
    never makes the server open, or say whether it has, any other file (`../`, `/etc/...`).
    The local CLI is not confined. The path is resolved as the file backend opens it."""
    if key_uri is None or urlsplit(key_uri).scheme.lower() != "file":
        return key_uri
    try:
        path = FsPath(unquote(urlsplit(key_uri).path, errors="strict")).resolve()
    except (UnicodeDecodeError, ValueError, OSError) as exc:
        raise InvalidKeyUri("file: key URI without a usable path") from exc
    if not path.is_relative_to(key_dir.resolve()):
        raise InvalidKeyUri("over the API, a file: key URI names a file in the CA key directory")
    return key_uri


@router.get("/cas/{ca_id}", summary="Read a CA")
def get_ca(
    ca_id: Annotated[str, Path(min_length=1, max_length=64)], _key: Reader, platform: PlatformDep
) -> CaOut:
    return CaOut.of(platform.pki.get_ca(ca_id))


@router.get(
    "/chain",
    summary="The active CA of a role and the CAs above it, PEM (for `openssl verify -CAfile`)",
    response_class=Response,
    responses={200: {"content": {PEM_CHAIN: {"schema": {"type": "string"}}}}},
)
def chain(_key: Reader, platform: PlatformDep, role: CaRole = CaRole.ISSUING) -> Response:
    return Response(platform.pki.chain_pem(role), media_type=PEM_CHAIN)


@router.post(
    "/certificates",
    status_code=status.HTTP_201_CREATED,
    summary="Issue a certificate from a CSR; names come from the registry, never the CSR",
)
def issue(
    body: IssueIn, key: Writer, platform: PlatformDep, response: Response
) -> CertificateDetailOut:
    lifetime = timedelta(hours=body.lifetime_hours) if body.lifetime_hours is not None else None
    issued = platform.pki.issue_from_csr(
        body.csr,
        body.physical_id,
        body.profile,
        actor=key.actor,
        dns_names=body.dns_names,
        ip_addresses=body.ip_addresses,
        lifetime=lifetime,
    )
    response.headers["Location"] = f"{router.prefix}/certificates/{issued.serial_hex}"
    return CertificateDetailOut.of(issued)


@router.get("/certificates", summary="Issued certificates, newest first")
def list_certificates(
    _key: Reader,
    platform: PlatformDep,
    physical_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    profile: Profile | None = None,
    include_revoked: bool = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> CertificatePage:
    found = platform.pki.list_certificates(
        physical_id=physical_id,
        profile=profile,
        include_revoked=include_revoked,
        limit=limit,
        offset=offset,
    )
    return CertificatePage(items=[CertificateOut.of(c) for c in found], limit=limit, offset=offset)


# Declared before `/certificates/{serial}`, which would otherwise take "AB12.pem" as a serial.
@router.get(
    "/certificates/{serial}.pem",
    summary="Download a certificate and its issuing CAs, PEM",
    response_class=Response,
    responses={200: {"content": {PEM_CHAIN: {"schema": {"type": "string"}}}}},
)
def certificate_pem(serial: SerialPath, _key: Reader, platform: PlatformDep) -> Response:
    return _pem_chain(platform.pki, platform.pki.get_certificate(serial))


@router.get(
    "/certificates/{serial}.der",
    summary="Download a certificate, DER",
    response_class=Response,
    responses={200: {"content": {PKIX_CERT: {"schema": {"type": "string", "format": "binary"}}}}},
)
def certificate_der(serial: SerialPath, _key: Reader, platform: PlatformDep) -> Response:
    return Response(platform.pki.get_certificate(serial).der, media_type=PKIX_CERT)


@router.get(
    "/certificates/{serial}",
    summary="Read a certificate: JSON, or PEM chain / DER by the Accept header",
    response_model=CertificateDetailOut,
    responses=_CERT_CONTENT,
)
def get_certificate(
    serial: SerialPath,
    _key: Reader,
    platform: PlatformDep,
    accept: Annotated[str | None, Header(max_length=1024)] = None,
) -> Response | CertificateDetailOut:
    found = platform.pki.get_certificate(serial)
    wanted = preferred_representation(accept)
    if wanted == PEM_CHAIN:
        return _pem_chain(platform.pki, found)
    if wanted == PKIX_CERT:
        return Response(found.der, media_type=PKIX_CERT)
    return CertificateDetailOut.of(found)


@router.post("/certificates/{serial}/revoke", summary="Revoke a certificate (RFC 5280 reason)")
def revoke(
    serial: SerialPath, body: RevokeIn, key: Writer, platform: PlatformDep
) -> CertificateOut:
    revoked = platform.pki.revoke(
        serial, body.reason, actor=key.actor, invalidity_date=body.invalidity_date
    )
    return CertificateOut.of(revoked)


@router.post(
    "/devices/{physical_id}/revoke-all",
    summary="Revoke every unexpired certificate of a unit; lists those this call revoked",
)
def revoke_all(
    physical_id: Annotated[str, Path(min_length=1, max_length=64)],
    body: RevokeAllIn,
    key: Writer,
    platform: PlatformDep,
) -> CertificateList:
    revoked = platform.pki.revoke_all_for(physical_id, body.reason, actor=key.actor)
    return CertificateList(items=[CertificateOut.of(c) for c in revoked])


def preferred_representation(accept: str | None) -> str:
    """The representation the `Accept` header ranks highest among JSON, PEM chain and DER
    (RFC 9110 §12.5.1; on equal weight the first listed wins); JSON if it names none."""
    best, best_weight = JSON, 0.0
    for item in (accept or "").split(","):
        media, *params = (part.strip().lower() for part in item.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if media in (JSON, PEM_CHAIN, PKIX_CERT) and weight > best_weight:
            best, best_weight = media, weight
    return best


def _pem_chain(pki: PkiService, certificate: IssuedCertificate) -> Response:
    """The certificate, then each CA above it that is not self-signed (the trust anchor is
    distributed separately: `GET /v1/pki/chain`)."""
    parts = [certificate.pem]
    ca_id: str | None = certificate.issuer_ca_id
    for _ in range(_MAX_CHAIN_DEPTH):
        if ca_id is None:
            break
        ca = pki.get_ca(ca_id)
        if ca.certificate.subject != ca.certificate.issuer:
            parts.append(ca.pem)
        ca_id = ca.parent_id
    return Response("".join(parts), media_type=PEM_CHAIN)

"""The CA's public endpoints at the URLs written into certificates: CRL and CA certificate
(DER), OCSP over POST and GET (RFC 6960 Appendix A), open without credentials."""

from __future__ import annotations

import base64
import os
from urllib.parse import quote, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID
from fastapi.testclient import TestClient

from devicetrust.identity import UnitSpec
from devicetrust.runtime import Platform
from devicetrust.store.database import Database
from tests.api.wire import assert_problem
from tests.conftest import snapshot_tables
from tests.pki.certs import ec_key, make_csr
from tests.pki.company_pki import company_ca

OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"


def _issue(platform: Platform) -> x509.Certificate:
    unit = platform.identity.register(UnitSpec("arm-r7", {}), actor="factory")
    issued = platform.pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, actor="test")
    return issued.certificate


def _request(
    leaf: x509.Certificate, issuer: x509.Certificate, *, nonce: bytes | None = None
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(Encoding.DER)


def _post(client: TestClient, der: bytes) -> ocsp.OCSPResponse:
    response = client.post("/pki/ocsp", content=der, headers={"Content-Type": OCSP_REQUEST})
    assert response.status_code == 200
    assert response.headers["content-type"] == OCSP_RESPONSE
    assert response.headers["cache-control"] == "no-store"
    return ocsp.load_der_ocsp_response(response.content)


def _get(client: TestClient, der: bytes) -> ocsp.OCSPResponse:
    encoded = quote(base64.b64encode(der).decode(), safe="")
    response = client.get(f"/pki/ocsp/{encoded}")
    assert response.status_code == 200
    assert response.headers["content-type"] == OCSP_RESPONSE
    return ocsp.load_der_ocsp_response(response.content)


def _path(url: str) -> str:
    return urlsplit(url).path


@pytest.fixture
def leaf(platform: Platform) -> x509.Certificate:
    platform.pki.init_hierarchy(actor="test")
    return _issue(platform)


def test_ocsp_answers_good_then_revoked_never_a_stale_good(
    client: TestClient, platform: Platform, leaf: x509.Certificate
) -> None:
    issuer = platform.pki.active_ca().certificate
    nonce = os.urandom(16)
    for send in (_post, _get):
        answer = send(client, _request(leaf, issuer))
        assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
        assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert answer.serial_number == leaf.serial_number
    with_nonce = _post(client, _request(leaf, issuer, nonce=nonce))
    assert with_nonce.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    # The delegated signer is in the response and certified by the issuing CA.
    (signer,) = with_nonce.certificates
    signer.verify_directly_issued_by(issuer)

    platform.pki.revoke(leaf.serial_number, "keyCompromise", actor="test")
    for send in (_post, _get):
        answer = send(client, _request(leaf, issuer))
        assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
        assert answer.revocation_reason is x509.ReasonFlags.key_compromise


def test_ocsp_follows_a_rotation_of_the_issuing_ca(
    client: TestClient, platform: Platform, leaf: x509.Certificate
) -> None:
    old_issuer = platform.pki.active_ca().certificate
    assert _post(client, _request(leaf, old_issuer)).certificate_status is ocsp.OCSPCertStatus.GOOD
    platform.pki.rotate_intermediate(actor="test")
    newer = _issue(platform)
    new_issuer = platform.pki.active_ca().certificate
    assert new_issuer != old_issuer
    assert _post(client, _request(newer, new_issuer)).certificate_status is ocsp.OCSPCertStatus.GOOD
    # The retired CA's certificates are still answered for.
    assert _post(client, _request(leaf, old_issuer)).certificate_status is ocsp.OCSPCertStatus.GOOD


def test_ocsp_unknown_serial_malformed_and_unserved(
    client: TestClient, platform: Platform, db: Database
) -> None:
    company, _ = company_ca(platform.clock.now(), "Somebody Else's CA")
    assert _post(client, _request(company, company)).response_status is (
        ocsp.OCSPResponseStatus.UNAUTHORIZED  # no CA yet
    )
    platform.pki.init_hierarchy(actor="test")
    issuer = platform.pki.active_ca().certificate
    stranger = _issue(platform)
    platform.pki.revoke(stranger.serial_number, "superseded", actor="test")
    before = snapshot_tables(db)
    # A serial the CA never issued, under its name: UNKNOWN, never GOOD.
    real = ocsp.load_der_ocsp_request(_request(stranger, issuer))
    forged = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        issuer_name_hash=real.issuer_name_hash,
        issuer_key_hash=real.issuer_key_hash,
        serial_number=12345,
        algorithm=hashes.SHA1(),
    )
    unknown = _post(client, forged.build().public_bytes(Encoding.DER))
    assert unknown.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    assert _post(client, b"garbage").response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert _post(client, b"").response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    bad_get = client.get("/pki/ocsp/not*base64")
    assert ocsp.load_der_ocsp_response(bad_get.content).response_status is (
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    )
    assert _post(client, _request(company, company)).response_status is (
        ocsp.OCSPResponseStatus.UNAUTHORIZED
    )
    wrong_type = client.post(
        "/pki/ocsp", content=_request(stranger, issuer), headers={"Content-Type": "text/plain"}
    )
    assert_problem(wrong_type, 415, "request.unsupported_media_type")
    assert snapshot_tables(db) == before


def test_crl_and_ca_certificate_at_the_urls_in_the_certificate(
    client: TestClient, platform: Platform, leaf: x509.Certificate
) -> None:
    issuer = platform.pki.active_ca().certificate
    points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    crl_path = _path(str(points[0].full_name[0].value))  # type: ignore[index]
    access = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    urls = {d.access_method: str(d.access_location.value) for d in access}
    assert _path(urls[AuthorityInformationAccessOID.OCSP]) == "/pki/ocsp"

    fetched = client.get(_path(urls[AuthorityInformationAccessOID.CA_ISSUERS]))
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "application/pkix-cert"
    assert x509.load_der_x509_certificate(fetched.content) == issuer

    empty = client.get(crl_path)
    assert empty.status_code == 200 and empty.headers["content-type"] == "application/pkix-crl"
    assert len(x509.load_der_x509_crl(empty.content)) == 0
    platform.pki.revoke(leaf.serial_number, "keyCompromise", actor="test")
    crl = x509.load_der_x509_crl(client.get(crl_path).content)
    assert crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    entry = crl.get_revoked_certificate_by_serial_number(leaf.serial_number)
    assert entry is not None

    assert_problem(client.get("/pki/crl/no-such-ca.crl"), 404, "pki.ca_not_found")
    assert_problem(client.get("/pki/ca/no-such-ca.crt"), 404, "pki.ca_not_found")

"""The public OCSP responder (`/pki/ocsp`, open to any relying party and outside the OpenAPI
document, so schemathesis does not reach it) under damaged requests: whatever arrives by
POST or GET, the answer is HTTP 200 with a DER OCSPResponse (RFC 6960 §2.3: errors are
`malformedRequest`, `unauthorized`, ...), never a 5xx and never a `successful` answer for a
request that does not parse."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devicetrust.runtime import Platform
from tests.security.mutations import mutated

_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def valid_request(platform: Platform, known: dict[str, str]) -> bytes:
    leaf = x509.load_pem_x509_certificate(
        platform.pki.get_certificate(known["serial"]).pem.encode()
    )
    issuer = x509.load_pem_x509_certificates(platform.pki.chain_pem().encode())[0]
    builder = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA256())
    builder = builder.add_extension(x509.OCSPNonce(os.urandom(16)), critical=False)
    return builder.build().public_bytes(Encoding.DER)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def _answer(response_body: bytes, status: int, request: bytes) -> ocsp.OCSPResponseStatus:
    assert status == 200
    answer = ocsp.load_der_ocsp_response(response_body)
    if answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL:
        parsed = ocsp.load_der_ocsp_request(request)  # it parsed, so it may be answered
        assert answer.serial_number == parsed.serial_number
    return answer.response_status


def test_the_valid_request_is_answered(client: TestClient, valid_request: bytes) -> None:
    response = client.post(
        "/pki/ocsp", content=valid_request, headers={"Content-Type": "application/ocsp-request"}
    )
    status = _answer(response.content, response.status_code, valid_request)
    assert status is ocsp.OCSPResponseStatus.SUCCESSFUL
    by_get = client.get(f"/pki/ocsp/{_get_path(valid_request)}")
    assert _answer(by_get.content, by_get.status_code, valid_request) is status


def _get_path(request: bytes) -> str:
    return quote(base64.b64encode(request).decode(), safe="")


@_SETTINGS
@given(data=st.data())
def test_a_damaged_request_by_post_is_an_ocsp_answer(
    client: TestClient, valid_request: bytes, data: st.DataObject
) -> None:
    request = data.draw(mutated(valid_request) | st.binary(max_size=600))
    response = client.post(
        "/pki/ocsp", content=request, headers={"Content-Type": "application/ocsp-request"}
    )
    _answer(response.content, response.status_code, request)


@_SETTINGS
@given(data=st.data())
def test_a_damaged_request_by_get_is_an_ocsp_answer(
    client: TestClient, valid_request: bytes, data: st.DataObject
) -> None:
    request = data.draw(mutated(valid_request))
    response = client.get(f"/pki/ocsp/{_get_path(request)}")
    _answer(response.content, response.status_code, request)


@_SETTINGS
@given(segment=st.text(max_size=300))
def test_any_get_path_is_an_ocsp_answer(client: TestClient, segment: str) -> None:
    response = client.get(f"/pki/ocsp/{quote(segment, safe='')}")
    assert response.status_code in (200, 404), response.text  # 404: an empty segment
    if response.status_code == 200:
        ocsp.load_der_ocsp_response(response.content)

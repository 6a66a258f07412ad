"""Regression: an X.509 structure with a version the library does not know (a v2 CSR, a v2
certificate) raised `cryptography.x509.InvalidVersion`, which is not a `ValueError`, so it
escaped every parser that caught only `ValueError`: a 500 from the unauthenticated EST
route and from the CA API, and an exception out of device-certificate verification and
the refusal audit. Found by the mutated-CSR property test (tests/security/
test_parser_properties.py). Each refusal is now the parser's own typed error.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from fastapi import FastAPI
from fastapi.testclient import TestClient

from devicetrust.deviceauth.mtls_auth import claimed_physical_id
from devicetrust.domain import DeviceTrustError
from devicetrust.pki.csr import parse_csr
from devicetrust.provisioning.est import PKCS10_MEDIA_TYPE, EstBodyInvalid, decode_csr
from devicetrust.runtime import Platform
from tests.api.wire import assert_problem
from tests.pki.certs import ec_key, make_csr

VERSION_0 = b"\x02\x01\x00"  # INTEGER 0: v1 (CSR), the first INTEGER of the encoding
CERT_V3 = b"\xa0\x03\x02\x01\x02"  # [0] EXPLICIT INTEGER 2: v3 (certificate)


def _with_byte(der: bytes, marker: bytes, value: int) -> bytes:
    edited = bytearray(der)
    at = edited.index(marker) + len(marker) - 1
    edited[at] = value
    return bytes(edited)


@pytest.fixture(scope="module")
def csr_v2() -> bytes:
    return _with_byte(make_csr(ec_key(), der=True), VERSION_0, 1)


@pytest.fixture(scope="module")
def cert_v2() -> bytes:
    key = ec_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "v2")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2026, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2027, 1, 1, tzinfo=UTC))
        .sign(key, hashes.SHA256())
    )
    return _with_byte(cert.public_bytes(Encoding.DER), CERT_V3, 1)


def _pem(der: bytes, label: str) -> str:
    return f"-----BEGIN {label}-----\n{base64.encodebytes(der).decode()}-----END {label}-----\n"


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def test_the_inputs_really_carry_an_unknown_version(csr_v2: bytes, cert_v2: bytes) -> None:
    with pytest.raises(x509.InvalidVersion):
        x509.load_der_x509_csr(csr_v2)
    with pytest.raises(x509.InvalidVersion):
        x509.load_der_x509_certificate(cert_v2)


def test_parsers_refuse_with_their_typed_error(csr_v2: bytes, cert_v2: bytes) -> None:
    with pytest.raises(EstBodyInvalid):
        decode_csr(base64.b64encode(csr_v2))
    with pytest.raises(DeviceTrustError) as refused:
        parse_csr(csr_v2)
    assert refused.value.code == "pki.csr_malformed"
    assert claimed_physical_id([cert_v2]) is None
    assert claimed_physical_id(_pem(cert_v2, "CERTIFICATE").encode()) is None


def test_device_certificate_verification_refuses(platform: Platform, cert_v2: bytes) -> None:
    verifier = platform.device_cert_verifier()
    assert verifier is not None
    with pytest.raises(DeviceTrustError) as der:
        verifier.verify_der([cert_v2])
    with pytest.raises(DeviceTrustError) as pem:
        verifier.verify_pem(_pem(cert_v2, "CERTIFICATE").encode())
    assert der.value.code == pem.value.code == "auth.cert_malformed"


def test_the_api_answers_problems_not_500(
    client: TestClient,
    admin: dict[str, str],
    platform: Platform,
    known: dict[str, str],
    csr_v2: bytes,
    cert_v2: bytes,
) -> None:
    issue = {"csr": _pem(csr_v2, "CERTIFICATE REQUEST"), "physical_id": known["physical_id"]}
    assert_problem(
        client.post("/v1/pki/certificates", json=issue, headers=admin), 400, "pki.csr_malformed"
    )
    imported = {
        "certificate_pem": _pem(cert_v2, "CERTIFICATE"),
        "role": "issuing",
        "key_uri": f"file:{platform.settings.pki_key_dir}/absent.pem",
    }
    response = client.post("/v1/pki/cas/import", json=imported, headers=admin)
    assert_problem(response, 400, "pki.ca_certificate_invalid")
    est = client.post(
        "/.well-known/est/simpleenroll",
        content=base64.b64encode(csr_v2),
        headers={
            "Content-Type": PKCS10_MEDIA_TYPE,
            "Authorization": "Basic " + base64.b64encode(b"unit:not-a-token").decode(),
        },
    )
    assert est.status_code < 500 and est.status_code in (400, 401), est.text
    assert est.headers["content-type"].startswith("application/problem+json")

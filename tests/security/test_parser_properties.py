"""Property tests of the parsers that face devices and operators, where the existing suites
only try hand-picked inputs: EST bodies and credentials, provisioning tokens, and CSRs,
whole or mutated, through the CA service and the API.

The property is the same everywhere: a parser returns a well-formed value or raises its
typed error (never another exception), and a refused CSR issues nothing and changes no row.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from devicetrust.domain import DeviceTrustError
from devicetrust.identity import UnitSpec
from devicetrust.provisioning.errors import MalformedEvidence
from devicetrust.provisioning.est import EstBodyInvalid, decode_csr, parse_basic, parse_bearer
from devicetrust.provisioning.symmetric import b64url, decode_token
from devicetrust.runtime import Platform
from tests.conftest import snapshot_tables
from tests.pki.certs import ec_key, make_csr
from tests.security.mutations import mutated

ACTOR = "operator:property"
_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
_CSR_DER = make_csr(ec_key(), der=True)


def mutated_der() -> st.SearchStrategy[bytes]:
    return mutated(_CSR_DER)


def _pem(der: bytes) -> str:
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"


def _proves_possession(der: bytes) -> x509.CertificateSigningRequest | None:
    try:
        csr = x509.load_der_x509_csr(der)
        return csr if csr.is_signature_valid else None
    except ValueError:
        return None


# ---- EST bodies and credentials ---------------------------------------------------------

est_bodies = (
    st.binary(max_size=2048)
    | mutated_der().map(base64.b64encode)
    | mutated_der().map(lambda der: _pem(der).encode())
    | st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n -"
    ).map(str.encode)
)


@_SETTINGS
@given(body=est_bodies)
def test_an_est_body_is_a_parseable_csr_or_a_typed_refusal(body: bytes) -> None:
    try:
        der = decode_csr(body)
    except EstBodyInvalid:
        return
    x509.load_der_x509_csr(der).subject  # noqa: B018  # it parses: decode_csr said so


credentials = st.text(max_size=300) | st.tuples(
    st.sampled_from(["Basic", "basic", "Bearer", "BEARER", "Digest", ""]),
    st.text(max_size=120) | st.binary(max_size=90).map(lambda b: base64.b64encode(b).decode()),
).map(" ".join)


@_SETTINGS
@given(header=credentials)
def test_an_est_credential_header_parses_or_is_none(header: str) -> None:
    basic = parse_basic(header)
    if basic is not None:
        user, password = basic
        assert user and password and ":" not in user
    bearer = parse_bearer(header)
    if bearer is not None:
        assert bearer == bearer.strip() and bearer


# ---- provisioning tokens (symmetric-key attestation) ------------------------------------

claims = st.dictionaries(
    st.sampled_from(["registration_id", "exp", "nonce", "extra"]),
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=70),
)
tokens = (
    st.text(max_size=1100)
    | st.builds(
        lambda c, mac: f"{b64url(json.dumps(c).encode())}.{b64url(mac)}",
        claims,
        st.binary(min_size=30, max_size=34),
    )
    | st.none()
    | st.integers()
)


@_SETTINGS
@given(token=tokens)
def test_a_provisioning_token_is_exact_claims_or_malformed(token: object) -> None:
    try:
        _raw, mac, parsed = decode_token(token)
    except MalformedEvidence:
        return
    assert set(parsed) == {"registration_id", "exp", "nonce"} and len(mac) == 32
    assert type(parsed["exp"]) is int and isinstance(parsed["registration_id"], str)


# ---- CSRs through the CA and the API ----------------------------------------------------


@pytest.fixture(scope="module")
def unit(platform: Platform) -> str:
    return str(platform.identity.register(UnitSpec("arm-csr", {}), actor=ACTOR).physical_id)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(der=mutated_der())
@example(der=_CSR_DER)  # the unmutated request is issued: the property is not vacuous
def test_a_mutated_csr_is_issued_only_with_proof_of_possession(
    platform: Platform, unit: str, der: bytes
) -> None:
    before = snapshot_tables(platform.db)
    try:
        issued = platform.pki.issue_from_csr(der, unit, actor=ACTOR)
    except DeviceTrustError:
        assert snapshot_tables(platform.db) == before
        event("refused")
        return
    csr = _proves_possession(der)
    assert csr is not None, "a certificate was issued for a CSR whose signature fails"
    event("issued")
    cert = x509.load_pem_x509_certificate(issued.pem.encode())
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert cert.public_key().public_bytes(*spki) == csr.public_key().public_bytes(*spki)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(der=mutated_der())
@example(der=_CSR_DER)
def test_a_mutated_csr_through_the_api_is_never_a_server_error(
    client: TestClient, admin: dict[str, str], unit: str, der: bytes
) -> None:
    body = {"csr": _pem(der), "physical_id": unit}
    response = client.post("/v1/pki/certificates", json=body, headers=admin)
    assert response.status_code < 500, response.text
    if response.status_code == 201:
        assert _proves_possession(der) is not None
    else:
        assert response.headers["content-type"].startswith("application/problem+json")

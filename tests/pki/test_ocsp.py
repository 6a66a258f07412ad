"""OcspResponder, read back with `cryptography`: statuses, signatures, CertID matching, nonce,
GET decoding, every kind of bad request, the cache never hiding a revocation, and signer
set-up checks. The openssl client interop lives in `test_ocsp_openssl.py`."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from asn1crypto import ocsp as asn1_ocsp  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from devicetrust.domain.clock import FixedClock
from devicetrust.pki.keys import KekPassword, import_key
from devicetrust.pki.ocsp import (
    OcspConfigInvalid,
    OcspMalformedRequest,
    OcspResponder,
    parse_get_path,
)
from devicetrust.vault import Vault
from tests.pki.ocsp_fixtures import TestPki, build_pki

START = datetime(2031, 3, 14, 9, 26, 53, tzinfo=UTC)
DER = serialization.Encoding.DER
Status = ocsp.OCSPResponseStatus


@pytest.fixture
def pki(tmp_path: Path) -> TestPki:
    return build_pki(tmp_path, START)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def responder(pki: TestPki, clock: FixedClock) -> OcspResponder:
    return OcspResponder([(pki.issuing, pki.ocsp_signer, pki.ocsp_key)], pki.status, clock)


def request_for(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    algorithm: hashes.HashAlgorithm | None = None,
    nonce: bytes | None = None,
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm or hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(DER)


def ask(responder: OcspResponder, request: bytes) -> ocsp.OCSPResponse:
    return ocsp.load_der_ocsp_response(responder.respond(request))


def check_signed_by(response: ocsp.OCSPResponse, signer: x509.Certificate) -> None:
    """The response verifies under the delegated signer, which it names and carries."""
    public_key = signer.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert response.signature_hash_algorithm is not None
    public_key.verify(
        response.signature,
        response.tbs_response_bytes,
        ec.ECDSA(response.signature_hash_algorithm),
    )
    assert response.certificates == [signer]
    expected = x509.SubjectKeyIdentifier.from_public_key(public_key).digest
    assert response.responder_key_hash == expected
    assert response.responder_name is None


def test_good(pki: TestPki, responder: OcspResponder) -> None:
    leaf = pki.leaf()
    response = ask(responder, request_for(leaf, pki.issuing))
    assert response.response_status is Status.SUCCESSFUL
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == leaf.serial_number
    assert response.this_update_utc == START
    assert response.next_update_utc == START + timedelta(hours=1)
    assert response.revocation_time_utc is None
    check_signed_by(response, pki.ocsp_signer)


def test_revoked_with_time_and_reason(pki: TestPki, responder: OcspResponder) -> None:
    leaf = pki.leaf()
    revoked_at = START - timedelta(minutes=3)
    pki.status.revoke(pki.issuing, leaf.serial_number, revoked_at, x509.ReasonFlags.superseded)
    response = ask(responder, request_for(leaf, pki.issuing))
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_time_utc == revoked_at
    assert response.revocation_reason is x509.ReasonFlags.superseded
    check_signed_by(response, pki.ocsp_signer)


def test_revoked_without_reason(pki: TestPki, responder: OcspResponder) -> None:
    leaf = pki.leaf()
    pki.status.revoke(pki.issuing, leaf.serial_number, START, reason=None)
    response = ask(responder, request_for(leaf, pki.issuing))
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason is None


def test_serial_the_ca_never_issued_is_unknown(pki: TestPki, responder: OcspResponder) -> None:
    response = ask(responder, request_for(pki.leaf(record=False), pki.issuing))
    assert response.response_status is Status.SUCCESSFUL
    assert response.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    check_signed_by(response, pki.ocsp_signer)


@pytest.mark.parametrize("algorithm", [hashes.SHA1(), hashes.SHA256(), hashes.SHA384()])
def test_cert_id_hash_is_echoed(
    pki: TestPki, responder: OcspResponder, algorithm: hashes.HashAlgorithm
) -> None:
    leaf = pki.leaf()
    request = ocsp.load_der_ocsp_request(request_for(leaf, pki.issuing, algorithm=algorithm))
    response = ask(responder, request.public_bytes(DER))
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.hash_algorithm.name == algorithm.name
    assert response.issuer_key_hash == request.issuer_key_hash
    assert response.issuer_name_hash == request.issuer_name_hash


def test_unknown_issuer_is_unauthorized(
    pki: TestPki, responder: OcspResponder, tmp_path: Path
) -> None:
    stranger = build_pki(tmp_path, START)
    response = ask(responder, request_for(stranger.leaf(), stranger.issuing))
    assert response.response_status is Status.UNAUTHORIZED
    # The root is a CA too, but not one this responder answers for.
    response = ask(responder, request_for(pki.issuing, pki.root))
    assert response.response_status is Status.UNAUTHORIZED


@pytest.mark.parametrize("size", [1, 16, 32])
def test_nonce_is_echoed(pki: TestPki, responder: OcspResponder, size: int) -> None:
    nonce = os.urandom(size)
    response = ask(responder, request_for(pki.leaf(), pki.issuing, nonce=nonce))
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce


def test_no_nonce_in_response_without_one_in_request(
    pki: TestPki, responder: OcspResponder
) -> None:
    response = ask(responder, request_for(pki.leaf(), pki.issuing))
    with pytest.raises(x509.ExtensionNotFound):
        response.extensions.get_extension_for_class(x509.OCSPNonce)


def _two_request_der(pki: TestPki) -> bytes:
    single = asn1_ocsp.OCSPRequest.load(request_for(pki.leaf(), pki.issuing))
    request = single["tbs_request"]["request_list"][0]
    doubled = asn1_ocsp.OCSPRequest({"tbs_request": {"request_list": [request, request.copy()]}})
    return bytes(doubled.dump())


def _critical_unknown_extension(pki: TestPki) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(pki.leaf(), pki.issuing, hashes.SHA1())
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
    return builder.add_extension(unknown, critical=True).build().public_bytes(DER)


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda p: b"", "empty body"),
        (lambda p: b"GET / HTTP/1.1\r\n", "not DER"),
        (lambda p: request_for(p.leaf(), p.issuing)[:-7], "truncated"),
        (lambda p: request_for(p.leaf(), p.issuing) + b"\x00", "trailing byte"),
        (lambda p: b"\x30\x82\x40\x00" + bytes(16_384), "oversized"),
        (lambda p: request_for(p.leaf(), p.issuing, nonce=os.urandom(33)), "33-byte nonce"),
        (lambda p: request_for(p.leaf(), p.issuing, nonce=b""), "empty nonce"),
        (_two_request_der, "two CertIDs (unsupported, see limitations)"),
        (_critical_unknown_extension, "unknown critical extension"),
    ],
)
def test_bad_requests_are_malformed_responses(
    pki: TestPki, responder: OcspResponder, make: object, what: str
) -> None:
    response = ask(responder, make(pki))  # type: ignore[operator]
    assert response.response_status is Status.MALFORMED_REQUEST, what


def test_get_path_round_trip(pki: TestPki, responder: OcspResponder) -> None:
    # Enough requests that their base64 shows '+', '/' and '=' in some of them.
    for _ in range(8):
        der = request_for(pki.leaf(), pki.issuing, nonce=os.urandom(16))
        text = base64.b64encode(der).decode()
        assert parse_get_path(quote(text, safe="")) == der
        assert parse_get_path(text.rstrip("=")) == der
        response = ocsp.load_der_ocsp_response(responder.respond_get(quote(text, safe="")))
        assert response.certificate_status is ocsp.OCSPCertStatus.GOOD


def test_a_trailing_slash_is_base64_not_a_path_separator() -> None:
    """The router hands over the segment already decoded, so a base64 text ending in '/'
    (the last 6 bits all ones) must keep it; it was once stripped, about 1 request in 64."""
    der = bytes([0x30, 0x04, 0x02, 0x02, 0x00, 0x3F])  # DER whose base64 ends with "/"
    text = base64.b64encode(der).decode()
    assert text.endswith("/")
    assert parse_get_path(text) == der
    assert parse_get_path("/" + text) == der  # a leading '/' is the path's


@pytest.mark.parametrize("path", ["", "%%%", "not*base64", "%FF%FE", "A" * 30_000])
def test_bad_get_paths(responder: OcspResponder, path: str) -> None:
    with pytest.raises(OcspMalformedRequest):
        parse_get_path(path)
    response = ocsp.load_der_ocsp_response(responder.respond_get(path))
    assert response.response_status is Status.MALFORMED_REQUEST


def test_cache_reuses_signatures_but_never_hides_a_revocation(
    pki: TestPki, responder: OcspResponder, clock: FixedClock
) -> None:
    leaf = pki.leaf()
    request = request_for(leaf, pki.issuing)
    first = responder.respond(request)
    clock.advance(timedelta(seconds=10))
    assert responder.respond(request) == first  # cached: same signed bytes
    # Revoked behind the responder's back (no invalidate): the very next answer says so.
    pki.status.revoke(pki.issuing, leaf.serial_number, clock.now())
    after = ocsp.load_der_ocsp_response(responder.respond(request))
    assert after.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert pki.status.calls == 3


def test_cache_entries_expire_and_can_be_invalidated(
    pki: TestPki, responder: OcspResponder, clock: FixedClock
) -> None:
    request = request_for(pki.leaf(), pki.issuing)
    first = responder.respond(request)
    clock.advance(timedelta(seconds=61))
    second = ocsp.load_der_ocsp_response(responder.respond(request))
    assert second.this_update_utc == START + timedelta(seconds=61)
    clock.advance(timedelta(seconds=1))
    responder.invalidate(second.serial_number)
    third = ocsp.load_der_ocsp_response(responder.respond(request))
    assert third.this_update_utc == START + timedelta(seconds=62)
    assert first != third.public_bytes(DER)


def test_nonce_requests_are_signed_fresh(pki: TestPki, responder: OcspResponder) -> None:
    leaf = pki.leaf()
    one = responder.respond(request_for(leaf, pki.issuing, nonce=b"a" * 16))
    two = responder.respond(request_for(leaf, pki.issuing, nonce=b"b" * 16))
    assert one != two


def test_expired_signer_gives_internal_error(
    pki: TestPki, responder: OcspResponder, clock: FixedClock
) -> None:
    clock.advance(pki.ocsp_signer.not_valid_after_utc - START + timedelta(seconds=1))
    response = ask(responder, request_for(pki.leaf(), pki.issuing))
    assert response.response_status is Status.INTERNAL_ERROR


def test_next_update_never_outlives_the_signer(pki: TestPki, clock: FixedClock) -> None:
    clock.advance(pki.ocsp_signer.not_valid_after_utc - START - timedelta(minutes=10))
    responder = OcspResponder([(pki.issuing, pki.ocsp_signer, pki.ocsp_key)], pki.status, clock)
    response = ask(responder, request_for(pki.leaf(), pki.issuing))
    assert response.next_update_utc == pki.ocsp_signer.not_valid_after_utc


def test_ca_key_may_sign_directly(pki: TestPki, tmp_path: Path, clock: FixedClock) -> None:
    password = KekPassword(Vault.from_key(os.urandom(32)))
    ca_key = import_key(f"file:{tmp_path / 'issuing.key.pem'}", pki.issuing_key, password=password)
    responder = OcspResponder([(pki.issuing, pki.issuing, ca_key)], pki.status, clock)
    response = ask(responder, request_for(pki.leaf(), pki.issuing))
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.certificates == []
    pki.issuing_key.public_key().verify(
        response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256())
    )


def test_signer_set_up_is_checked(pki: TestPki, tmp_path: Path, clock: FixedClock) -> None:
    stranger = build_pki(tmp_path, START)
    not_a_signer = (
        x509.CertificateBuilder()
        .subject_name(pki.ocsp_signer.subject)
        .issuer_name(pki.issuing.subject)
        .public_key(pki.ocsp_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START - timedelta(days=1))
        .not_valid_after(START + timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(pki.issuing_key, hashes.SHA256())
    )
    cases = [
        ([], "no issuer"),
        ([(pki.issuing, stranger.ocsp_signer, stranger.ocsp_key)], "signer of another CA"),
        ([(pki.issuing, pki.ocsp_signer, stranger.ocsp_key)], "key not the signer's"),
        ([(pki.issuing, not_a_signer, pki.ocsp_key)], "no OCSPSigning EKU"),
    ]
    for issuers, what in cases:
        with pytest.raises(OcspConfigInvalid):
            OcspResponder(issuers, pki.status, clock)
            pytest.fail(what)
    with pytest.raises(OcspConfigInvalid):
        OcspResponder(
            [(pki.issuing, pki.ocsp_signer, pki.ocsp_key)],
            pki.status,
            clock,
            validity=timedelta(minutes=1),
        )

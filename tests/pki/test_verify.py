"""DeviceCertVerifier: a good chain maps to its device; every way a chain can be wrong is
refused with its own code (and the same public message)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from devicetrust.domain.clock import FixedClock
from devicetrust.domain.errors import Unauthorized
from devicetrust.domain.ids import LogicalName, new_physical_id
from devicetrust.pki.verify import (
    MAX_PRESENTED_CERTIFICATES,
    CertificateRefused,
    DeviceCertVerifier,
    VerifiedDevice,
    VerifierConfigInvalid,
)
from tests.pki.ocsp_fixtures import MemoryStatus, TestPki, build_pki, ca_cert, pem

START = datetime(2031, 3, 14, 9, 26, 53, tzinfo=UTC)


@pytest.fixture
def pki(tmp_path: Path) -> TestPki:
    return build_pki(tmp_path, START)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def verifier(pki: TestPki, clock: FixedClock) -> DeviceCertVerifier:
    return DeviceCertVerifier([pki.root], [pki.issuing], pki.status, clock)


def refusal(verifier: DeviceCertVerifier, leaf: x509.Certificate) -> CertificateRefused:
    with pytest.raises(CertificateRefused) as caught:
        verifier.verify([leaf])
    assert isinstance(caught.value, Unauthorized)
    assert caught.value.status == 401
    return caught.value


def test_valid_chain_maps_to_the_device(pki: TestPki, verifier: DeviceCertVerifier) -> None:
    physical_id = new_physical_id()
    leaf = pki.leaf(physical_id, "line-03-left-welding-12")
    device = verifier.verify([leaf])
    assert device == VerifiedDevice(
        physical_id=physical_id,
        logical_name=LogicalName("line-03-left-welding-12"),
        serial=leaf.serial_number,
        not_after=leaf.not_valid_after_utc,
        chain=(leaf, pki.issuing, pki.root),
    )


def test_unbound_device_has_no_logical_name(pki: TestPki, verifier: DeviceCertVerifier) -> None:
    leaf = pki.leaf(logical_name=None)
    assert verifier.verify([leaf]).logical_name is None


def test_pem_and_der_chains_are_accepted(pki: TestPki, verifier: DeviceCertVerifier) -> None:
    leaf = pki.leaf()
    from_pem = verifier.verify_pem(pem(leaf, pki.issuing))
    ders = [c.public_bytes(serialization.Encoding.DER) for c in (leaf, pki.issuing)]
    from_der = verifier.verify_der(ders)
    assert from_pem == from_der
    assert from_pem.serial == leaf.serial_number


def test_expired_after_the_clock_moves(
    pki: TestPki, verifier: DeviceCertVerifier, clock: FixedClock
) -> None:
    leaf = pki.leaf(not_after=START + timedelta(hours=1))
    verifier.verify([leaf])
    clock.advance(timedelta(hours=1, seconds=1))
    assert refusal(verifier, leaf).code == "auth.cert_expired"


def test_not_yet_valid(pki: TestPki, verifier: DeviceCertVerifier) -> None:
    leaf = pki.leaf(not_before=START + timedelta(minutes=10))
    assert refusal(verifier, leaf).code == "auth.cert_not_yet_valid"


def test_expired_issuing_ca(pki: TestPki, verifier: DeviceCertVerifier, clock: FixedClock) -> None:
    leaf = pki.leaf(not_after=pki.issuing.not_valid_after_utc + timedelta(days=30))
    clock.advance(pki.issuing.not_valid_after_utc - START + timedelta(days=1))
    error = refusal(verifier, leaf)
    assert error.code == "auth.cert_expired"
    assert "CA certificate" in error.message


@pytest.mark.parametrize(
    ("changes", "what"),
    [
        ({"eku": [ExtendedKeyUsageOID.SERVER_AUTH]}, "serverAuth only"),
        ({"eku": [ExtendedKeyUsageOID.CODE_SIGNING]}, "codeSigning only"),
        ({"digital_signature": False}, "keyUsage without digitalSignature"),
    ],
)
def test_wrong_usage(
    pki: TestPki, verifier: DeviceCertVerifier, changes: dict[str, object], what: str
) -> None:
    leaf = pki.leaf(**changes)  # type: ignore[arg-type]
    assert refusal(verifier, leaf).code == "auth.cert_wrong_usage", what


def test_ca_certificate_is_not_a_device(pki: TestPki, verifier: DeviceCertVerifier) -> None:
    assert refusal(verifier, pki.issuing).code == "auth.cert_wrong_usage"


def test_untrusted_root(pki: TestPki, tmp_path: Path, clock: FixedClock) -> None:
    stranger = build_pki(tmp_path, START)
    leaf = stranger.leaf()
    verifier = DeviceCertVerifier([pki.root], [pki.issuing, stranger.issuing], pki.status, clock)
    error = refusal(verifier, leaf)
    assert error.code == "auth.cert_untrusted"


def test_presented_intermediates_are_not_path_candidates(pki: TestPki, clock: FixedClock) -> None:
    verifier = DeviceCertVerifier([pki.root], [], pki.status, clock)
    with pytest.raises(CertificateRefused) as caught:
        verifier.verify([pki.leaf(), pki.issuing])
    assert caught.value.code == "auth.cert_untrusted"


def test_revoked_leaf(pki: TestPki, verifier: DeviceCertVerifier) -> None:
    leaf = pki.leaf()
    verifier.verify([leaf])
    pki.status.revoke(pki.issuing, leaf.serial_number, START)
    error = refusal(verifier, leaf)
    assert error.code == "auth.cert_revoked"
    assert error.details["position"] == 0
    assert error.details["reason"] == "keyCompromise"


def test_revoked_intermediate(pki: TestPki, verifier: DeviceCertVerifier) -> None:
    leaf = pki.leaf()
    pki.status.revoke(pki.root, pki.issuing.serial_number, START, x509.ReasonFlags.ca_compromise)
    error = refusal(verifier, leaf)
    assert error.code == "auth.cert_revoked"
    assert error.details["position"] == 1


def test_revoked_beats_unknown(pki: TestPki, verifier: DeviceCertVerifier) -> None:
    leaf = pki.leaf(record=False)
    pki.status.revoke(pki.root, pki.issuing.serial_number, START)
    assert refusal(verifier, leaf).code == "auth.cert_revoked"


def test_leaf_the_ca_never_recorded_is_unknown(pki: TestPki, verifier: DeviceCertVerifier) -> None:
    leaf = pki.leaf(record=False)
    error = refusal(verifier, leaf)
    assert error.code == "auth.cert_unknown"
    assert error.details["position"] == 0


def test_ca_certificate_the_status_source_does_not_know_is_unknown(
    pki: TestPki, clock: FixedClock
) -> None:
    leaf = pki.leaf()
    status = MemoryStatus()
    status.record(pki.issuing, leaf.serial_number)  # the leaf, but not the issuing CA
    verifier = DeviceCertVerifier([pki.root], [pki.issuing], status, clock)
    error = refusal(verifier, leaf)
    assert error.code == "auth.cert_unknown"
    assert error.details["position"] == 1


def test_issuing_ca_as_trust_anchor_needs_no_status_above_it(
    pki: TestPki, clock: FixedClock
) -> None:
    """An imported company issuing CA whose own issuer devicetrust does not record."""
    leaf = pki.leaf()
    status = MemoryStatus()
    status.record(pki.issuing, leaf.serial_number)
    verifier = DeviceCertVerifier([pki.issuing], [], status, clock)
    assert verifier.verify([leaf]).chain == (leaf, pki.issuing)


def test_ed25519_ca_chains_are_refused_by_the_path_builder(pki: TestPki, clock: FixedClock) -> None:
    """Limitation pinned: cryptography's webpki policy permits no Ed25519 CA key (device keys
    may be Ed25519). Fails when that changes, so the limitation note can go."""
    key = ed25519.Ed25519PrivateKey.generate()
    root = ca_cert("ed25519 root", key, None, START - timedelta(days=1), START + timedelta(days=9))
    leaf = pki.leaf(issuer=(root, key))
    verifier = DeviceCertVerifier([root], [], pki.status, clock)
    error = refusal(verifier, leaf)
    assert error.code == "auth.cert_untrusted"
    assert "Forbidden public key algorithm" in error.details["reason"]


def _pid() -> str:
    return str(new_physical_id())


def _uuid_v1(pki: TestPki) -> x509.Certificate:
    u = str(uuid.uuid1())
    return pki.leaf(u, san_uris=[f"urn:uuid:{u}"])


def _upper_case_uuid(pki: TestPki) -> x509.Certificate:
    u = _pid()
    return pki.leaf(u, san_uris=[f"urn:uuid:{u.upper()}"])


def _two_logical_names(pki: TestPki) -> x509.Certificate:
    u = _pid()
    logical = ["urn:devicetrust:logical:a", "urn:devicetrust:logical:b"]
    return pki.leaf(u, san_uris=[f"urn:uuid:{u}", *logical])


NO_IDENTITY: dict[str, Callable[[TestPki], x509.Certificate]] = {
    "no SAN at all": lambda p: p.leaf(san_uris=[]),
    "no urn:uuid": lambda p: p.leaf(san_uris=["urn:devicetrust:logical:robot-1"]),
    "two urn:uuid": lambda p: p.leaf(san_uris=[f"urn:uuid:{_pid()}", f"urn:uuid:{_pid()}"]),
    "UUIDv1": _uuid_v1,
    "upper-case UUID": _upper_case_uuid,
    "CN names another device": lambda p: p.leaf(common_name=_pid()),
    "no CN": lambda p: p.leaf(common_name=""),
    "invalid logical name": lambda p: p.leaf(logical_name="Not A Name"),
    "two logical names": _two_logical_names,
}


@pytest.mark.parametrize("what", list(NO_IDENTITY))
def test_no_identity(pki: TestPki, verifier: DeviceCertVerifier, what: str) -> None:
    leaf = NO_IDENTITY[what](pki)
    assert refusal(verifier, leaf).code == "auth.cert_no_identity", what


def test_malformed_chains(pki: TestPki, verifier: DeviceCertVerifier) -> None:
    cases: list[Callable[[], VerifiedDevice]] = [
        lambda: verifier.verify_pem(b"-----BEGIN CERTIFICATE-----\nnot base64\n"),
        lambda: verifier.verify_pem(b""),
        lambda: verifier.verify_der([b"\x30\x03\x02\x01\x01"]),
        lambda: verifier.verify_der([]),
        lambda: verifier.verify([pki.leaf()] * (MAX_PRESENTED_CERTIFICATES + 1)),
    ]
    for case in cases:
        with pytest.raises(CertificateRefused) as caught:
            case()
        assert caught.value.code == "auth.cert_malformed"


def test_every_refusal_tells_the_peer_the_same(pki: TestPki, verifier: DeviceCertVerifier) -> None:
    revoked = pki.leaf()
    pki.status.revoke(pki.issuing, revoked.serial_number, START)
    leaves = [revoked, pki.leaf(record=False), pki.leaf(san_uris=[])]
    messages = {refusal(verifier, leaf).PUBLIC_MESSAGE for leaf in leaves}
    assert messages == {"certificate authentication failed"}


def test_no_trust_roots_is_refused_at_setup(pki: TestPki, clock: FixedClock) -> None:
    with pytest.raises(VerifierConfigInvalid):
        DeviceCertVerifier([], [pki.issuing], pki.status, clock)

"""Bad input to the CA gets a precise error code and changes nothing: not a row, not an event."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from devicetrust.domain import DeviceState, DeviceTrustError
from devicetrust.domain.ids import new_physical_id
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.pki import Hierarchy, PkiService, Profile
from devicetrust.store.database import Database
from tests.conftest import snapshot_tables
from tests.pki.certs import ec_key, make_csr, sha1_csr, tamper_signature
from tests.pki.conftest import ACTOR, NAME


@dataclass
class World:
    pki: PkiService
    live: str
    dead: str
    quarantined: str
    good_csr: bytes
    serial: int


@pytest.fixture
def world(pki: PkiService, hierarchy: Hierarchy, identity: IdentityService) -> World:
    live, dead, quarantined = (
        identity.register(UnitSpec("arm", {}), actor="factory").physical_id for _ in range(3)
    )
    identity.create_logical(NAME, actor=ACTOR)
    identity.bind(NAME, live, actor=ACTOR)
    identity.set_state(dead, DeviceState.DECOMMISSIONED, actor=ACTOR)
    identity.set_state(quarantined, DeviceState.QUARANTINED, actor=ACTOR)
    good = make_csr(ec_key())
    serial = pki.issue_from_csr(good, live, actor=ACTOR).serial
    return World(pki, live, dead, quarantined, good, serial)


def _pem_to_der(pem: bytes) -> bytes:
    return x509.load_pem_x509_csr(pem).public_bytes(Encoding.DER)


def _issue(
    csr: bytes, profile: Profile = Profile.DEVICE, **kw: object
) -> Callable[[World], object]:
    return lambda w: w.pki.issue_from_csr(csr, w.live, profile, actor=ACTOR, **kw)  # type: ignore[arg-type]


GOOD = make_csr(ec_key())
CSR_CASES: dict[str, tuple[str, Callable[[World], object]]] = {
    "garbage": ("pki.csr_malformed", _issue(b"this is not a certificate request")),
    "empty": ("pki.csr_malformed", _issue(b"")),
    "truncated DER": ("pki.csr_malformed", _issue(_pem_to_der(GOOD)[:-40])),
    "truncated PEM": ("pki.csr_malformed", _issue(GOOD[: len(GOOD) // 2])),
    "oversized": ("pki.csr_malformed", _issue(b"0" * 70_000)),
    "not a CSR but a string": ("pki.csr_malformed", _issue("-----BEGIN CERTIFICATE-----")),  # type: ignore[arg-type]
    "tampered signature": ("pki.csr_bad_signature", _issue(tamper_signature(GOOD))),
    # Proof of possession is checked before anything else: CA:TRUE is not even looked at.
    "tampered CA request": (
        "pki.csr_bad_signature",
        _issue(tamper_signature(make_csr(ec_key(), ca=True))),
    ),
    "RSA-1024": ("pki.weak_key", _issue(make_csr(rsa.generate_private_key(65537, 1024)))),
    "P-192": ("pki.weak_key", _issue(make_csr(ec_key(ec.SECP192R1())))),
    "secp256k1": ("pki.weak_key", _issue(make_csr(ec_key(ec.SECP256K1())))),
    "DSA": ("pki.weak_key", _issue(make_csr(dsa.generate_private_key(2048)))),
    "SHA-1 signature": (
        "pki.csr_weak_signature",
        lambda w: w.pki.issue_from_csr(sha1_csr(), w.live, actor=ACTOR),
    ),
    "CA:TRUE": ("pki.csr_forbidden_request", _issue(make_csr(ec_key(), ca=True))),
    "extra DNS SAN": (
        "pki.csr_forbidden_request",
        _issue(make_csr(ec_key(), dns=["evil.example"])),
    ),
    "another logical name": (
        "pki.csr_forbidden_request",
        _issue(make_csr(ec_key(), uris=["urn:devicetrust:logical:line-09-paint-01"])),
    ),
    "another physical id as CN": (
        "pki.csr_forbidden_request",
        _issue(make_csr(ec_key(), common_name=new_physical_id())),
    ),
}

REQUEST_CASES: dict[str, tuple[str, Callable[[World], object]]] = {
    "unknown physical id": (
        "identity.physical_not_found",
        lambda w: w.pki.issue_from_csr(w.good_csr, new_physical_id(), actor=ACTOR),
    ),
    "malformed physical id": (
        "identity.invalid_physical_id",
        lambda w: w.pki.issue_from_csr(w.good_csr, "robot-12", actor=ACTOR),
    ),
    "decommissioned unit": (
        "pki.unit_not_live",
        lambda w: w.pki.issue_from_csr(w.good_csr, w.dead, actor=ACTOR),
    ),
    "quarantined unit": (
        "pki.unit_not_live",
        lambda w: w.pki.issue_from_csr(make_csr(ec_key()), w.quarantined, actor=ACTOR),
    ),
    "device profile without unit": (
        "pki.invalid_request",
        lambda w: w.pki.issue_from_csr(w.good_csr, None, Profile.DEVICE, actor=ACTOR),
    ),
    "wildcard server name": (
        "pki.invalid_request",
        lambda w: w.pki.issue_from_csr(
            make_csr(ec_key()), None, Profile.SERVER, dns_names=["*.example"], actor=ACTOR
        ),
    ),
    "CA profile from a CSR": (
        "pki.invalid_request",
        lambda w: w.pki.issue_from_csr(w.good_csr, w.live, "ca", actor=ACTOR),
    ),
    "lifetime beyond the profile": (
        "pki.invalid_request",
        lambda w: w.pki.issue_from_csr(
            w.good_csr, w.live, lifetime=timedelta(days=3650), actor=ACTOR
        ),
    ),
    "renew unknown serial": (
        "pki.certificate_not_found",
        lambda w: w.pki.renew(12345, actor=ACTOR),
    ),
    "revoke malformed serial": ("pki.invalid_serial", lambda w: w.pki.revoke("zz", actor=ACTOR)),
    "revoke zero serial": ("pki.invalid_serial", lambda w: w.pki.revoke(0, actor=ACTOR)),
    "revoke unknown reason": (
        "pki.invalid_reason",
        lambda w: w.pki.revoke(w.serial, "because", actor=ACTOR),
    ),
    "revoke removeFromCRL": (
        "pki.invalid_reason",
        lambda w: w.pki.revoke(w.serial, "removeFromCRL", actor=ACTOR),
    ),
    "revoke unknown serial": (
        "pki.certificate_not_found",
        lambda w: w.pki.revoke(0xDEADBEEF, "keyCompromise", actor=ACTOR),
    ),
    "release a certificate not on hold": (
        "pki.not_on_hold",
        lambda w: w.pki.release_hold(w.serial, actor=ACTOR),
    ),
    "OCSP signer of an unknown CA": ("pki.ca_not_found", lambda w: w.pki.ocsp_signer("nope")),
}


def test_bad_input_is_refused_and_changes_nothing(db: Database, world: World) -> None:
    """Every case against one world (a PostgreSQL reset per case would dominate the run);
    each case is still judged on its own: its code, and the database unchanged."""
    problems = []
    for case, (code, call) in {**CSR_CASES, **REQUEST_CASES}.items():
        before = snapshot_tables(db)
        try:
            call(world)
        except DeviceTrustError as exc:
            if exc.code != code:
                problems.append(f"{case}: {exc.code} ({exc.message}), expected {code}")
        else:
            problems.append(f"{case}: accepted, expected {code}")
        if snapshot_tables(db) != before:
            problems.append(f"{case}: the database changed")
    assert problems == []


def test_issuing_before_ca_init_is_a_configuration_error(
    db: Database, pki: PkiService, identity: IdentityService
) -> None:
    unit = identity.register(UnitSpec("arm", {}), actor="factory")
    before = snapshot_tables(db)
    with pytest.raises(DeviceTrustError) as caught:
        pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, actor=ACTOR)
    assert caught.value.code == "pki.ca_not_initialised"
    assert snapshot_tables(db) == before

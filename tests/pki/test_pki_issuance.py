"""Issuance: every profile as openssl reads it, chains openssl and cryptography accept, names
from the registry, serials, recording before returning, renewal and key ownership."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509 import verification
from sqlalchemy import select

from devicetrust.domain import DeviceState, FixedClock
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.pki import (
    CaRole,
    Hierarchy,
    KeyCompromised,
    KeyInUse,
    KeyReuse,
    KeyReuseRefused,
    NotRenewable,
    PkiService,
    Profile,
    UnitNotEligible,
    UnitNotLive,
    serial_text,
)
from devicetrust.pki.serials import SERIAL_BITS, new_serial
from devicetrust.store.database import Database
from devicetrust.store.models import IssuedCertificateRow, OutboxRow
from tests.conftest import snapshot_tables
from tests.pki.certs import ec_key, make_csr, openssl, verify, write, x509_text
from tests.pki.conftest import ACTOR, NAME

BASE = "http://127.0.0.1:8080"


def test_device_profile_as_openssl_reads_it(
    pki: PkiService,
    hierarchy: Hierarchy,
    bound_unit: PhysicalIdentity,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    pid = bound_unit.physical_id
    cert = pki.issue_from_csr(make_csr(ec_key()), pid, Profile.DEVICE, actor=ACTOR)
    text = x509_text(tmp_path, cert.pem)
    issuing = hierarchy.issuing.ca_id
    for expected in (
        f"Subject: CN = {pid}",
        "CA:FALSE",
        "Digital Signature",
        "TLS Web Client Authentication",
        f"URI:urn:uuid:{pid}",
        f"URI:urn:devicetrust:logical:{NAME}",
        f"OCSP - URI:{BASE}/pki/ocsp",
        f"CA Issuers - URI:{BASE}/pki/ca/{issuing}.crt",
        f"URI:{BASE}/pki/crl/{issuing}.crl",
    ):
        assert expected in text, expected
    assert "Key Encipherment" not in text and "Server Authentication" not in text
    assert cert.not_before == clock.now() - timedelta(minutes=5)  # clock-skew backdate
    assert cert.not_after == clock.now() + timedelta(hours=24)
    assert (cert.physical_id, cert.logical_name) == (pid, NAME)
    result = verify(
        tmp_path,
        root=hierarchy.root.pem,
        intermediate=hierarchy.issuing.pem,
        leaf=cert.pem,
        at=clock.now(),
        purpose="sslclient",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The chain verifier will use cryptography's path building: it accepts the chain too.
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([hierarchy.root.certificate]))
        .time(clock.now())
        .build_client_verifier()
    )
    verified = verifier.verify(cert.certificate, [hierarchy.issuing.certificate])
    assert x509.UniformResourceIdentifier(f"urn:uuid:{pid}") in (verified.subjects or [])


def test_birth_profile_comes_from_the_manufacturing_ca(
    pki: PkiService,
    hierarchy: Hierarchy,
    unit: PhysicalIdentity,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    cert = pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, Profile.BIRTH, actor=ACTOR)
    assert cert.issuer_ca_id == hierarchy.manufacturing.ca_id
    assert cert.not_after - clock.now() > timedelta(days=365 * 19)
    text = x509_text(tmp_path, cert.pem)
    mfg = hierarchy.manufacturing.ca_id
    for expected in (
        "TLS Web Client Authentication",
        f"URI:urn:uuid:{unit.physical_id}",
        f"URI:{BASE}/pki/crl/{mfg}.crl",
        f"CA Issuers - URI:{BASE}/pki/ca/{mfg}.crt",
    ):
        assert expected in text, expected
    assert "urn:devicetrust:logical" not in text
    result = verify(
        tmp_path,
        root=hierarchy.root.pem,
        intermediate=hierarchy.manufacturing.pem,
        leaf=cert.pem,
        at=clock.now(),
        crl_pem=pki.latest_crl_record(mfg).pem,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_server_profile_carries_the_operators_names(
    pki: PkiService, hierarchy: Hierarchy, clock: FixedClock, tmp_path: Path
) -> None:
    cert = pki.issue_from_csr(
        make_csr(ec_key(), dns=["broker.local"]),
        None,
        Profile.SERVER,
        dns_names=["broker.local", "LOCALHOST"],
        ip_addresses=["127.0.0.1"],
        actor=ACTOR,
    )
    text = x509_text(tmp_path, cert.pem)
    for expected in (
        "Subject: CN = broker.local",
        "TLS Web Server Authentication",
        "DNS:broker.local, DNS:localhost, IP Address:127.0.0.1",
        f"OCSP - URI:{BASE}/pki/ocsp",
    ):
        assert expected in text, expected
    result = verify(
        tmp_path,
        root=hierarchy.root.pem,
        intermediate=hierarchy.issuing.pem,
        leaf=cert.pem,
        at=clock.now(),
        purpose="sslserver",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ocsp_signer_profile_from_a_csr(
    pki: PkiService, hierarchy: Hierarchy, tmp_path: Path
) -> None:
    cert = pki.issue_from_csr(
        make_csr(ec_key()), None, Profile.OCSP_SIGNER, ca_role=CaRole.MANUFACTURING, actor=ACTOR
    )
    assert cert.issuer_ca_id == hierarchy.manufacturing.ca_id
    text = x509_text(tmp_path, cert.pem)
    assert "OCSP Signing" in text and "OCSP No Check" in text
    assert "OCSP - URI" not in text  # a nocheck responder is not itself checked
    assert cert.not_after - cert.not_before <= timedelta(days=30, minutes=5)


def test_every_approved_device_key_type_is_certified(
    pki: PkiService, hierarchy: Hierarchy, unit: PhysicalIdentity, clock: FixedClock, tmp_path: Path
) -> None:
    keys = [
        ec_key(ec.SECP384R1()),
        ec_key(ec.SECP521R1()),
        ed25519.Ed25519PrivateKey.generate(),
        rsa.generate_private_key(65537, 2048),
    ]
    for key in keys:
        cert = pki.issue_from_csr(make_csr(key), unit.physical_id, actor=ACTOR)
        assert cert.certificate.public_key() == key.public_key()
        result = verify(
            tmp_path,
            root=hierarchy.root.pem,
            intermediate=hierarchy.issuing.pem,
            leaf=cert.pem,
            at=clock.now(),
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_a_csr_may_echo_the_registry_names(
    pki: PkiService, hierarchy: Hierarchy, bound_unit: PhysicalIdentity
) -> None:
    pid = bound_unit.physical_id
    csr = make_csr(
        ec_key(),
        common_name=pid,
        uris=[f"urn:uuid:{pid}", f"urn:devicetrust:logical:{NAME}"],
        der=True,
    )
    cert = pki.issue_from_csr(csr, pid, actor=ACTOR)
    assert cert.subject == f"CN={pid}"


def test_serials_are_159_random_bits_positive_and_unique(
    db: Database, pki: PkiService, hierarchy: Hierarchy, unit: PhysicalIdentity
) -> None:
    drawn = [new_serial() for _ in range(1000)]
    assert all(s > 0 and s.bit_length() <= SERIAL_BITS for s in drawn)
    assert len(set(drawn)) == 1000
    # Random top bits: about half use all 159 bits (all below would be a 2**-1000 event).
    assert 300 < sum(s.bit_length() == SERIAL_BITS for s in drawn) < 700
    key_csr = make_csr(ec_key())
    issued = [pki.issue_from_csr(key_csr, unit.physical_id, actor=ACTOR) for _ in range(50)]
    serials = {c.serial for c in issued}
    assert len(serials) == 50
    for cert in issued:
        assert cert.certificate.serial_number == cert.serial
        assert serial_text(cert.serial) == cert.serial_hex


def test_a_serial_collision_is_refused_by_the_database(
    db: Database,
    pki: PkiService,
    hierarchy: Hierarchy,
    unit: PhysicalIdentity,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("devicetrust.pki.issuance.new_serial", lambda: 0x1234567890ABCDEF)
    pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, actor=ACTOR)
    before = snapshot_tables(db)
    with pytest.raises(Exception) as caught:
        pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, actor=ACTOR)
    assert getattr(caught.value, "code", None) == "store.constraint_violated"
    assert snapshot_tables(db) == before


def test_the_certificate_is_recorded_with_its_event_before_it_is_returned(
    db: Database, pki: PkiService, hierarchy: Hierarchy, unit: PhysicalIdentity
) -> None:
    cert = pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, actor=ACTOR)
    with db.engine.connect() as conn:
        row = conn.execute(
            select(IssuedCertificateRow.der, IssuedCertificateRow.fingerprint_sha256).where(
                IssuedCertificateRow.serial == f"{cert.serial:040x}"
            )
        ).one()
        events = conn.execute(
            select(OutboxRow.payload).where(OutboxRow.type == "credential.issued")
        ).scalars()
        payloads = [p for p in events if p["serial"] == cert.serial_hex]
    assert row == (cert.der, cert.fingerprint_sha256)
    assert payloads and payloads[0]["physical_id"] == unit.physical_id


def test_renewal_with_the_same_key_and_with_a_new_one(
    pki: PkiService,
    hierarchy: Hierarchy,
    bound_unit: PhysicalIdentity,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    pid = bound_unit.physical_id
    first = pki.issue_from_csr(make_csr(ec_key()), pid, actor=ACTOR)
    clock.advance(timedelta(hours=20))
    same_key = pki.renew(first.pem.encode(), actor="device")
    assert same_key.spki_sha256 == first.spki_sha256 and same_key.serial != first.serial
    assert same_key.renewed_from == first.serial
    assert same_key.not_after == clock.now() + timedelta(hours=24)
    assert pki.get_certificate(first.serial).revoked_at is None  # overlaps until it expires
    rekeyed = pki.renew(same_key.serial_hex, make_csr(ec_key()), actor="device")
    assert rekeyed.spki_sha256 != same_key.spki_sha256
    assert pki.current_certificate(pid) == rekeyed
    with pytest.raises(KeyReuseRefused):
        pki.renew(rekeyed.serial, actor="device", key_reuse=KeyReuse.REQUIRE_NEW)
    clock.advance(timedelta(hours=25))
    with pytest.raises(NotRenewable):
        pki.renew(rekeyed.serial, actor="device")


def test_revoked_and_birth_certificates_are_not_renewed(
    pki: PkiService, hierarchy: Hierarchy, unit: PhysicalIdentity
) -> None:
    birth = pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, Profile.BIRTH, actor=ACTOR)
    device = pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, actor=ACTOR)
    pki.revoke(device.serial, "superseded", actor=ACTOR)
    for serial in (birth.serial, device.serial):
        with pytest.raises(NotRenewable):
            pki.renew(serial, actor="device")


def test_one_key_one_owner_and_compromised_keys_never_again(
    db: Database,
    pki: PkiService,
    hierarchy: Hierarchy,
    identity: IdentityService,
    unit: PhysicalIdentity,
) -> None:
    other = identity.register(UnitSpec("arm", {}), actor="factory")
    key = ec_key()
    first = pki.issue_from_csr(make_csr(key), unit.physical_id, actor=ACTOR)
    with pytest.raises(KeyInUse):
        pki.issue_from_csr(make_csr(key), other.physical_id, actor=ACTOR)
    with pytest.raises(KeyReuseRefused):
        pki.issue_from_csr(
            make_csr(key), unit.physical_id, actor=ACTOR, key_reuse=KeyReuse.REQUIRE_NEW
        )
    second = pki.issue_from_csr(make_csr(key), unit.physical_id, actor=ACTOR)
    pki.revoke(first.serial, "keyCompromise", actor=ACTOR)
    before = snapshot_tables(db)
    with pytest.raises(KeyCompromised):
        pki.issue_from_csr(make_csr(key), unit.physical_id, actor=ACTOR)
    assert snapshot_tables(db) == before
    # Every certificate of the compromised key went with it.
    assert pki.get_certificate(second.serial).revocation_reason is x509.ReasonFlags.key_compromise


def test_unit_state_decides_which_certificates_it_may_get(
    pki: PkiService,
    hierarchy: Hierarchy,
    identity: IdentityService,
    bound_unit: PhysicalIdentity,
) -> None:
    pid = bound_unit.physical_id
    with pytest.raises(UnitNotEligible):  # active: in service, no new birth certificate
        pki.issue_from_csr(make_csr(ec_key()), pid, Profile.BIRTH, actor=ACTOR)
    identity.set_state(pid, DeviceState.SUSPENDED, actor=ACTOR)
    with pytest.raises(UnitNotLive):
        pki.issue_from_csr(make_csr(ec_key()), pid, actor=ACTOR)


def test_openssl_prints_the_serial_the_service_reports(
    pki: PkiService, hierarchy: Hierarchy, unit: PhysicalIdentity, tmp_path: Path
) -> None:
    cert = pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, actor=ACTOR)
    result = openssl("x509", "-in", write(tmp_path, "c.pem", cert.pem), "-noout", "-serial")
    assert result.stdout.strip() == f"serial={cert.serial_hex}"
    assert pki.get_certificate(cert.serial_hex.lower()) == cert

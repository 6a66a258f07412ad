"""Revocation, CRLs and certificate status: what openssl, relying parties and the OCSP
responder see after each step."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import insert, select

from devicetrust.domain import DeviceState, FixedClock
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService
from devicetrust.pki import (
    AlreadyRevoked,
    CertStatus,
    Hierarchy,
    Keyring,
    PkiPolicy,
    PkiService,
    Profile,
    UnitNotLive,
)
from devicetrust.pki.serials import new_serial, serial_key
from devicetrust.store.database import Database
from devicetrust.store.models import IssuedCertificateRow, OutboxRow
from tests.pki.certs import ec_key, make_csr, openssl, verify, write
from tests.pki.conftest import ACTOR

R = x509.ReasonFlags


def test_after_revocation_openssl_crl_check_says_certificate_revoked(
    db: Database,
    pki: PkiService,
    hierarchy: Hierarchy,
    bound_unit: PhysicalIdentity,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    cert = pki.issue_from_csr(make_csr(ec_key()), bound_unit.physical_id, actor=ACTOR)
    chain = {"root": hierarchy.root.pem, "intermediate": hierarchy.issuing.pem}
    issuing = hierarchy.issuing.ca_id
    good = verify(
        tmp_path, **chain, leaf=cert.pem, at=clock.now(), crl_pem=pki.latest_crl_record(issuing).pem
    )
    assert good.returncode == 0, good.stdout + good.stderr

    compromised_since = clock.now() - timedelta(days=2)
    revoked = pki.revoke(
        cert.serial_hex, "keyCompromise", actor=ACTOR, invalidity_date=compromised_since
    )
    assert revoked.revocation_reason is R.key_compromise and revoked.revoked_at == clock.now()
    crl = pki.latest_crl_record(issuing)
    assert crl.number == 2 and crl.entries == 1
    assert crl.next_update - crl.this_update == timedelta(hours=24)
    bad = verify(tmp_path, **chain, leaf=cert.pem, at=clock.now(), crl_pem=crl.pem)
    assert bad.returncode != 0
    assert "certificate revoked" in bad.stdout + bad.stderr
    text = openssl("crl", "-in", write(tmp_path, "c.pem", crl.pem), "-noout", "-text").stdout
    assert f"Serial Number: {cert.serial_hex}" in text and "Key Compromise" in text
    entry = x509.load_der_x509_crl(crl.der).get_revoked_certificate_by_serial_number(cert.serial)
    assert entry is not None
    invalidity = entry.extensions.get_extension_for_class(x509.InvalidityDate).value
    assert invalidity.invalidity_date_utc == compromised_since
    with db.engine.connect() as conn:
        payloads = conn.execute(
            select(OutboxRow.payload).where(OutboxRow.type == "credential.revoked")
        ).scalars()
        (payload,) = list(payloads)
    assert payload["serial"] == cert.serial_hex
    assert payload["physical_id"] == bound_unit.physical_id
    assert payload["reason"] == "keyCompromise"
    with pytest.raises(AlreadyRevoked):
        pki.revoke(cert.serial, "superseded", actor=ACTOR)
    with pytest.raises(AlreadyRevoked):
        pki.revoke(cert.serial, "keyCompromise", actor=ACTOR)


def test_a_superseded_certificate_can_later_be_marked_compromised(
    pki: PkiService, hierarchy: Hierarchy, unit: PhysicalIdentity, clock: FixedClock
) -> None:
    cert = pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, actor=ACTOR)
    pki.revoke(cert.serial, "superseded", actor=ACTOR)
    superseded_at = clock.now()
    clock.advance(timedelta(hours=1))
    marked = pki.revoke(cert.serial, "keyCompromise", actor=ACTOR)
    assert (marked.revocation_reason, marked.revoked_at) == (R.key_compromise, superseded_at)


def test_status_source_answers_from_the_records(
    pki: PkiService, hierarchy: Hierarchy, unit: PhysicalIdentity, clock: FixedClock
) -> None:
    status = pki.status_source()
    cert = pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, actor=ACTOR)
    issuing, manufacturing = hierarchy.issuing.certificate, hierarchy.manufacturing.certificate
    assert status.status_of(issuing, cert.serial).status is CertStatus.GOOD
    assert status.status_of(manufacturing, cert.serial).status is CertStatus.UNKNOWN
    assert status.status_of(issuing, new_serial()).status is CertStatus.UNKNOWN
    assert status.status_of(issuing, -5).status is CertStatus.UNKNOWN
    pki.revoke(cert.serial, "certificateHold", actor=ACTOR)
    info = status.status_of(issuing, cert.serial)
    assert (info.status, info.reason, info.revoked_at) == (
        CertStatus.REVOKED,
        R.certificate_hold,
        clock.now(),
    )
    # The intermediates are certificates of the root, and known to it.
    root, issuing_serial = hierarchy.root.certificate, issuing.serial_number
    assert status.status_of(root, issuing_serial).status is CertStatus.GOOD


def test_revoke_all_for_a_unit_is_idempotent(
    pki: PkiService, hierarchy: Hierarchy, unit: PhysicalIdentity
) -> None:
    pid = unit.physical_id
    birth = pki.issue_from_csr(make_csr(ec_key()), pid, Profile.BIRTH, actor=ACTOR)
    device = pki.issue_from_csr(make_csr(ec_key()), pid, actor=ACTOR)
    revoked = pki.revoke_all_for(pid, "cessationOfOperation", actor=ACTOR)
    assert {c.serial for c in revoked} == {birth.serial, device.serial}
    assert pki.revoke_all_for(pid, "cessationOfOperation", actor=ACTOR) == []
    for ca in (hierarchy.issuing, hierarchy.manufacturing):
        crl = x509.load_der_x509_crl(pki.latest_crl(ca.ca_id))
        assert len(crl) == 1
        (entry,) = list(crl)
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        assert reason is R.cessation_of_operation


def test_a_hold_is_released_or_made_permanent(
    pki: PkiService,
    hierarchy: Hierarchy,
    identity: IdentityService,
    bound_unit: PhysicalIdentity,
    clock: FixedClock,
) -> None:
    pid = bound_unit.physical_id
    first = pki.issue_from_csr(make_csr(ec_key()), pid, actor=ACTOR)
    second = pki.issue_from_csr(make_csr(ec_key()), pid, actor=ACTOR)
    held_at = clock.now()
    for cert in (first, second):
        pki.revoke(cert.serial, "certificateHold", actor=ACTOR)
    crl = x509.load_der_x509_crl(pki.latest_crl(hierarchy.issuing.ca_id))
    assert len(crl) == 2
    clock.advance(timedelta(minutes=10))
    permanent = pki.revoke(first.serial, "keyCompromise", actor=ACTOR)
    assert permanent.revocation_reason is R.key_compromise and permanent.revoked_at == held_at
    released = pki.release_hold(second.serial, actor=ACTOR)
    assert released.revoked_at is None
    crl = x509.load_der_x509_crl(pki.latest_crl(hierarchy.issuing.ca_id))
    assert [entry.serial_number for entry in crl] == [first.serial]
    status = pki.status_source().status_of(hierarchy.issuing.certificate, second.serial)
    assert status.status is CertStatus.GOOD
    # No hold is lifted for a unit that is not in service.
    third = pki.issue_from_csr(make_csr(ec_key()), pid, actor=ACTOR)
    pki.revoke(third.serial, "certificateHold", actor=ACTOR)
    identity.set_state(pid, DeviceState.SUSPENDED, actor=ACTOR)
    with pytest.raises(UnitNotLive):
        pki.release_hold(third.serial, actor=ACTOR)


def test_crls_are_refreshed_when_due_and_drop_long_expired_entries(
    pki: PkiService, hierarchy: Hierarchy, unit: PhysicalIdentity, clock: FixedClock
) -> None:
    assert pki.refresh_due().crls == ()
    cert = pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, actor=ACTOR)
    pki.revoke(cert.serial, "superseded", actor=ACTOR)
    issuing, root = hierarchy.issuing.ca_id, hierarchy.root.ca_id
    clock.advance(timedelta(hours=13))  # past half of the 24 h CRL validity
    report = pki.refresh_due()
    assert set(report.crls) == {issuing, hierarchy.manufacturing.ca_id}
    assert report.skipped == ()
    assert pki.latest_crl_record(issuing).number == 3
    assert pki.latest_crl_record(root).number == 1  # 30-day root CRL: not due yet
    clock.advance(timedelta(days=16))
    assert root in pki.refresh_due().crls  # the root key was opened for that step only
    root_crl = pki.latest_crl_record(root)
    assert root_crl.next_update - root_crl.this_update == timedelta(days=30)
    # RFC 5280 §3.3: the entry stays one CRL period past the certificate's expiry, then goes.
    assert pki.latest_crl_record(issuing).entries == 0
    numbers = [pki.generate_crl(issuing).number for _ in range(3)]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3


def test_ocsp_signers_are_renewed_before_they_expire(
    pki: PkiService, hierarchy: Hierarchy, clock: FixedClock
) -> None:
    before = pki.ocsp_signer(hierarchy.issuing.certificate)
    clock.advance(timedelta(days=21))  # less than a third of 30 days left
    report = pki.refresh_due()
    assert set(report.ocsp_signers) == {hierarchy.issuing.ca_id, hierarchy.manufacturing.ca_id}
    after = pki.ocsp_signer(hierarchy.issuing.certificate)
    assert after.certificate.serial_number != before.certificate.serial_number
    assert after.key_uri != before.key_uri
    assert pki.refresh_due().ocsp_signers == ()
    key = pki.ocsp_signing_key(after)
    assert key.public_key() == after.certificate.public_key()


def test_without_crl_on_revoke_the_crl_waits_for_refresh_due(
    db: Database, clock: FixedClock, keyring: Keyring, identity: IdentityService
) -> None:
    pki = PkiService(db, clock, keyring, policy=PkiPolicy(crl_on_revoke=False))
    made = pki.init_hierarchy(actor=ACTOR)
    cert = pki.issue_from_csr(
        make_csr(ec_key()), None, Profile.SERVER, dns_names=["a.b"], actor=ACTOR
    )
    pki.revoke(cert.serial, actor=ACTOR)
    assert pki.latest_crl_record(made.issuing.ca_id).number == 1
    assert made.issuing.ca_id in pki.refresh_due().crls
    crl = x509.load_der_x509_crl(pki.latest_crl(made.issuing.ca_id))
    (entry,) = list(crl)
    assert entry.serial_number == cert.serial
    assert not list(entry.extensions)  # `unspecified` is left out (RFC 5280 §5.3.1)


def test_a_crl_of_100k_entries_is_generated_in_seconds(
    sqlite_db: Database, clock: FixedClock, keyring: Keyring
) -> None:
    pki = PkiService(sqlite_db, clock, keyring)
    made = pki.init_hierarchy(actor=ACTOR)
    now = clock.now()
    rows = [
        {
            "serial": serial_key(new_serial()),
            "issuer_ca_id": made.issuing.ca_id,
            "profile": Profile.DEVICE.value,
            "subject": "CN=x",
            "not_before": now,
            "not_after": now + timedelta(hours=24),
            "der": b"",
            "fingerprint_sha256": f"{i:064x}",
            "spki_sha256": f"{i:064x}",
            "issued_at": now,
            "issued_by": ACTOR,
            "revoked_at": now,
            "revocation_reason": R.key_compromise.value if i % 2 else R.superseded.value,
        }
        for i in range(100_000)
    ]
    with sqlite_db.engine.begin() as conn:
        conn.execute(insert(IssuedCertificateRow), rows)
    started = time.perf_counter()
    record = pki.generate_crl(made.issuing.ca_id)
    elapsed = time.perf_counter() - started
    assert record.entries == 100_000
    crl = x509.load_der_x509_crl(record.der)
    assert crl.is_signature_valid(made.issuing.certificate.public_key())  # type: ignore[arg-type]
    assert elapsed < 10, f"100k-entry CRL took {elapsed:.1f}s"

"""`CertificateReenrollment` without HTTP (both database backends): a live operational
certificate renews for a new key; garbage, a certificate of a decommissioned unit and a
flood of failures from one source are refused, each with one audit entry and no other
change (the HTTPS path with curl is `test_est_mtls.py`)."""

from __future__ import annotations

import pytest
from cryptography import x509
from sqlalchemy import select

from devicetrust.domain import FixedClock
from devicetrust.domain.errors import DeviceTrustError
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService
from devicetrust.pki import Hierarchy, PkiService, Profile
from devicetrust.provisioning.reenroll import CertificateReenrollment
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow
from tests.conftest import snapshot_tables
from tests.provisioning.conftest import csr_for, new_key

AUDIT_TABLES = ("audit_log", "audit_head")


@pytest.fixture
def reenrollment(
    db: Database, clock: FixedClock, pki: PkiService, hierarchy: Hierarchy
) -> CertificateReenrollment:
    return CertificateReenrollment(db, clock, pki)


def _operational(pki: PkiService, physical_id: str) -> str:
    return pki.issue_from_csr(csr_for(new_key()), physical_id, Profile.DEVICE, actor="op").pem


def _refused(
    db: Database, reenrollment: CertificateReenrollment, presented: bytes, code: str
) -> None:
    before = snapshot_tables(db)
    with pytest.raises(DeviceTrustError) as refused:
        reenrollment.reenroll(presented, csr_for(new_key()), source="10.9.0.1")
    assert refused.value.code == code
    after = snapshot_tables(db)
    for table, rows in before.items():
        if table not in AUDIT_TABLES:
            assert after[table] == rows, table
    assert len(after["audit_log"]) == len(before["audit_log"]) + 1
    with db.read() as session:
        last = session.execute(
            select(AuditEntryRow).order_by(AuditEntryRow.seq.desc()).limit(1)
        ).scalar_one()
    assert last.action == "provisioning.refused"
    assert last.details == {"code": code, "method": "est-certificate", "source": "10.9.0.1"}


def test_a_live_certificate_renews_for_a_new_key(
    reenrollment: CertificateReenrollment, pki: PkiService, units: list[PhysicalIdentity]
) -> None:
    pid = units[0].physical_id
    old = _operational(pki, pid)
    key = new_key()

    issued = reenrollment.reenroll(old.encode(), csr_for(key), source="10.9.0.1")

    assert issued.physical_id == pid
    assert issued.renewed_from == x509.load_pem_x509_certificate(old.encode()).serial_number
    certificate = x509.load_pem_x509_certificate(issued.pem.encode())
    assert certificate.public_key() == key.public_key()


def test_garbage_and_a_decommissioned_unit_are_refused(
    reenrollment: CertificateReenrollment,
    pki: PkiService,
    identity: IdentityService,
    units: list[PhysicalIdentity],
    db: Database,
) -> None:
    _refused(db, reenrollment, b"-----BEGIN CERTIFICATE-----\nAAAA\n", "auth.cert_malformed")
    pid = units[1].physical_id
    old = _operational(pki, pid)
    identity.set_state(pid, DeviceState.DECOMMISSIONED, actor="op", reason="scrapped")
    _refused(db, reenrollment, old.encode(), "pki.unit_not_live")


def test_failures_from_one_source_are_rate_limited(
    reenrollment: CertificateReenrollment, db: Database
) -> None:
    for _ in range(10):
        with pytest.raises(DeviceTrustError):
            reenrollment.reenroll(b"junk", b"", source="10.9.0.1")
    _refused(db, reenrollment, b"junk", "provisioning.rate_limited")

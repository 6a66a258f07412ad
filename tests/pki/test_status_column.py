"""`status_column` (the status of a certificate read beside other columns, for device
authentication's one statement) answers exactly what `DatabaseStatusSource.status_of`
answers: good, revoked with its reason, on hold, and unknown (another issuer's key, a serial
never issued, one that cannot be a serial), on SQLite and PostgreSQL."""

from __future__ import annotations

from cryptography import x509
from sqlalchemy import select

from devicetrust.domain.records import PhysicalIdentity
from devicetrust.pki import Hierarchy, PkiService, Profile
from devicetrust.pki.status import StatusInfo
from devicetrust.pki.status_store import issuer_key, status_column, status_from, status_params
from devicetrust.store.database import Database
from tests.pki.certs import ec_key, make_csr
from tests.pki.conftest import ACTOR


def both(
    db: Database, pki: PkiService, issuer: x509.Certificate, serial: int
) -> tuple[StatusInfo, StatusInfo]:
    with db.read() as session:
        answer = session.execute(
            select(status_column(0)), status_params(0, issuer_key(issuer), serial)
        ).scalar_one()
    column = status_from(serial, answer)
    source = pki.status_source().status_of(issuer, serial)
    return column, StatusInfo(source.serial, source.status, reason=source.reason)


def test_the_column_answers_what_the_status_source_answers(
    db: Database, pki: PkiService, hierarchy: Hierarchy, unit: PhysicalIdentity
) -> None:
    issuing, root = hierarchy.issuing.certificate, hierarchy.root.certificate
    kept, revoked, held = (
        pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, Profile.DEVICE, actor=ACTOR)
        for _ in range(3)
    )
    pki.revoke(revoked.serial, "keyCompromise", actor=ACTOR)
    pki.revoke(held.serial, "certificateHold", actor=ACTOR)
    cases = [
        (issuing, kept.serial),  # good
        (issuing, revoked.serial),  # revoked, keyCompromise
        (issuing, held.serial),  # revoked, certificateHold
        (root, issuing.serial_number),  # the issuing CA itself: good
        (root, kept.serial),  # another issuer's key: unknown
        (issuing, kept.serial + 1),  # never issued: unknown
        (issuing, 1 << 160),  # cannot be a serial: unknown
    ]
    for issuer, serial in cases:
        column, source = both(db, pki, issuer, serial)
        assert column == source, (issuer.subject, serial)

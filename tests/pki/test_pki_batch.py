"""Batch issuance (`issue_batch`): one transaction for many CSRs, all or nothing, with the
same checks as one at a time; and the issuer cache following a rotation made elsewhere."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography import x509
from sqlalchemy import func, select

from devicetrust.domain import DeviceState, FixedClock
from devicetrust.domain.errors import DeviceTrustError, NotFound
from devicetrust.domain.ids import new_physical_id
from devicetrust.events.audit import AuditLog
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.pki import (
    CaRole,
    CsrBadSignature,
    CsrMalformed,
    Hierarchy,
    InvalidRequest,
    IssueRequest,
    KeyInUse,
    Keyring,
    PkiService,
    Profile,
    UnitNotLive,
)
from devicetrust.pki.issuance import MAX_BATCH
from devicetrust.store.database import Database
from devicetrust.store.models import IssuedCertificateRow, OutboxRow
from tests.conftest import snapshot_tables
from tests.pki.certs import ec_key, make_csr
from tests.pki.conftest import ACTOR


def _units(identity: IdentityService, n: int) -> list[str]:
    specs = [UnitSpec("arm-r7", {"controller": f"C-{i:04d}"}) for i in range(n)]
    return [u.physical_id for u in identity.register_batch(specs, actor="factory")]


def _requests(units: list[str]) -> list[IssueRequest]:
    return [IssueRequest(make_csr(ec_key()), unit) for unit in units]


def _bad_signature_csr() -> bytes:
    """A well-formed CSR whose signature does not verify: one bit of it flipped."""
    der = bytearray(make_csr(ec_key(), der=True))
    der[-3] ^= 0x01
    return bytes(der)


def _issued_count(db: Database) -> int:
    with db.read() as session:
        return session.execute(select(func.count()).select_from(IssuedCertificateRow)).scalar_one()


def test_batch_issues_every_request_in_order_and_records_each(
    pki: PkiService, hierarchy: Hierarchy, identity: IdentityService, db: Database
) -> None:
    units = _units(identity, 6)
    before = _issued_count(db)
    requests = [
        *_requests(units[:5]),
        IssueRequest(make_csr(ec_key()), units[5], Profile.BIRTH),
        IssueRequest(make_csr(ec_key()), profile=Profile.SERVER, dns_names=["gw.example"]),
    ]
    issued = pki.issue_batch(requests, actor=ACTOR)

    assert [c.physical_id for c in issued] == [*units, None]
    assert [c.profile for c in issued] == [Profile.DEVICE] * 5 + [Profile.BIRTH, Profile.SERVER]
    assert [c.issuer_ca_id for c in issued[5:]] == [
        hierarchy.manufacturing.ca_id,
        hierarchy.issuing.ca_id,
    ]
    for cert, request in zip(issued, requests, strict=True):
        issuer = hierarchy.manufacturing if cert.profile is Profile.BIRTH else hierarchy.issuing
        cert.certificate.verify_directly_issued_by(issuer.certificate)
        assert isinstance(request.csr, bytes)
        assert cert.certificate.public_key() == x509.load_pem_x509_csr(request.csr).public_key()
        assert pki.get_certificate(cert.serial) == cert  # committed before returned
    assert _issued_count(db) == before + len(requests)
    with db.read() as session:
        events = session.execute(
            select(OutboxRow.payload).where(OutboxRow.type == "credential.issued")
        ).scalars()
        announced = {payload["serial"] for payload in events}
    assert {c.serial_hex for c in issued} <= announced
    assert AuditLog(db).verify().ok


def test_batch_serials_are_unique(
    pki: PkiService, hierarchy: Hierarchy, identity: IdentityService, db: Database
) -> None:
    units = _units(identity, 40)
    issued = pki.issue_batch(_requests(units), actor=ACTOR)
    serials = [c.serial for c in issued]
    assert len(set(serials)) == len(serials) == 40
    with db.read() as session:
        stored = session.execute(
            select(IssuedCertificateRow.serial).where(
                IssuedCertificateRow.serial.in_([f"{s:040x}" for s in serials])
            )
        ).scalars()
        assert len(set(stored)) == 40


@pytest.mark.parametrize(
    ("bad", "error"),
    [(_bad_signature_csr, CsrBadSignature), (lambda: b"-----BEGIN garbage", CsrMalformed)],
    ids=["bad-signature", "garbage"],
)
def test_a_bad_csr_in_the_middle_refuses_the_batch_and_records_nothing(
    pki: PkiService,
    hierarchy: Hierarchy,
    identity: IdentityService,
    db: Database,
    bad: Callable[[], bytes],
    error: type[DeviceTrustError],
) -> None:
    units = _units(identity, 5)
    requests = _requests(units)
    requests[2] = IssueRequest(bad(), units[2])
    before = snapshot_tables(db)
    with pytest.raises(error) as refused:
        pki.issue_batch(requests, actor=ACTOR)
    assert refused.value.details["index"] == 2
    assert refused.value.message.startswith("request 2: ")
    assert snapshot_tables(db) == before


def test_a_refusal_after_signing_rolls_back_the_certificates_already_signed(
    pki: PkiService, hierarchy: Hierarchy, identity: IdentityService, db: Database
) -> None:
    """Requests 0-2 are signed and added to the transaction before request 3's unit is
    found quarantined: none of them may survive."""
    units = _units(identity, 5)
    identity.set_state(units[3], DeviceState.QUARANTINED, actor=ACTOR)
    before = snapshot_tables(db)
    with pytest.raises(UnitNotLive) as refused:
        pki.issue_batch(_requests(units), actor=ACTOR)
    assert refused.value.details["index"] == 3
    assert snapshot_tables(db) == before


def test_an_unknown_unit_is_named_by_its_index(
    pki: PkiService, hierarchy: Hierarchy, identity: IdentityService, db: Database
) -> None:
    units = [*_units(identity, 2), new_physical_id()]
    before = snapshot_tables(db)
    with pytest.raises(NotFound) as refused:
        pki.issue_batch(_requests(units), actor=ACTOR)
    assert refused.value.code == "identity.physical_not_found"
    assert refused.value.details["index"] == 2
    assert snapshot_tables(db) == before


def test_a_key_certified_earlier_in_the_batch_is_not_certified_for_another_unit(
    pki: PkiService, hierarchy: Hierarchy, identity: IdentityService, db: Database
) -> None:
    units = _units(identity, 2)
    key = ec_key()
    before = snapshot_tables(db)
    with pytest.raises(KeyInUse) as refused:
        pki.issue_batch(
            [IssueRequest(make_csr(key), units[0]), IssueRequest(make_csr(key), units[1])],
            actor=ACTOR,
        )
    assert refused.value.details["index"] == 1
    assert snapshot_tables(db) == before
    # The same key twice for the same unit is what one-at-a-time issuance allows too.
    twice = pki.issue_batch(
        [IssueRequest(make_csr(key), units[0]), IssueRequest(make_csr(key), units[0])],
        actor=ACTOR,
    )
    assert twice[0].spki_sha256 == twice[1].spki_sha256


def test_batch_bounds(pki: PkiService, hierarchy: Hierarchy, db: Database) -> None:
    before = snapshot_tables(db)
    assert pki.issue_batch([], actor=ACTOR) == []
    with pytest.raises(InvalidRequest):
        pki.issue_batch([IssueRequest(b"")] * (MAX_BATCH + 1), actor=ACTOR)
    assert snapshot_tables(db) == before


def test_single_issuance_errors_name_no_index(
    pki: PkiService, hierarchy: Hierarchy, identity: IdentityService
) -> None:
    with pytest.raises(CsrBadSignature) as refused:
        pki.issue_from_csr(_bad_signature_csr(), _units(identity, 1)[0], actor=ACTOR)
    assert "index" not in refused.value.details
    assert not refused.value.message.startswith("request ")


def test_issuer_cache_follows_a_rotation_made_by_another_process(
    pki: PkiService,
    hierarchy: Hierarchy,
    identity: IdentityService,
    db: Database,
    clock: FixedClock,
    keyring: Keyring,
) -> None:
    """`pki` has the issuing CA cached; another service (another process) rotates it; the
    next certificate `pki` issues comes from the new CA."""
    units = _units(identity, 2)
    first = pki.issue_from_csr(make_csr(ec_key()), units[0], actor=ACTOR)
    assert first.issuer_ca_id == hierarchy.issuing.ca_id
    other = PkiService(db, clock, keyring)
    rotated = other.rotate_intermediate(actor=ACTOR, role=CaRole.ISSUING)
    [after] = pki.issue_batch(_requests(units[1:]), actor=ACTOR)
    assert after.issuer_ca_id == rotated.ca_id != first.issuer_ca_id
    after.certificate.verify_directly_issued_by(rotated.certificate)

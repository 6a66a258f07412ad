"""The CA hierarchy: creation, rotation with an offline root, import of a company CA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from sqlalchemy import select

from devicetrust.domain import DeviceTrustError, FixedClock
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.pki import (
    CaKeyMismatch,
    CaRole,
    CaStatus,
    Hierarchy,
    HierarchyExists,
    Keyring,
    PkiService,
)
from devicetrust.pki.keys import KeyAlgorithm
from devicetrust.store.database import Database
from devicetrust.store.models import OutboxRow
from tests.conftest import snapshot_tables
from tests.pki.certs import ec_key, make_csr, verify, x509_text
from tests.pki.company_pki import clear_key, company_ca, encrypted_key, pem
from tests.pki.conftest import ACTOR


def _ext(certificate: x509.Certificate, kind: type[Any]) -> Any:
    return certificate.extensions.get_extension_for_class(kind)


def test_init_creates_root_issuing_manufacturing_and_ocsp_signers(
    db: Database, pki: PkiService, hierarchy: Hierarchy, tmp_path: Path
) -> None:
    root, issuing, manufacturing = hierarchy.root, hierarchy.issuing, hierarchy.manufacturing
    assert [root.role, issuing.role, manufacturing.role] == list(CaRole)
    assert {root.status, issuing.status, manufacturing.status} == {CaStatus.ACTIVE}
    root.certificate.verify_directly_issued_by(root.certificate)
    assert _ext(root.certificate, x509.BasicConstraints).value.path_length == 1
    for ca in (issuing, manufacturing):
        ca.certificate.verify_directly_issued_by(root.certificate)
        constraints = _ext(ca.certificate, x509.BasicConstraints)
        assert constraints.critical and constraints.value.ca
        assert constraints.value.path_length == 0
        usage = _ext(ca.certificate, x509.KeyUsage)
        assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
        assert ca.parent_id == root.ca_id
    signers = {s.issuer_ca_id: s.certificate for s in hierarchy.ocsp_signers}
    assert set(signers) == {issuing.ca_id, manufacturing.ca_id}
    for ca_id, signer in signers.items():
        eku = _ext(signer, x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]
        _ext(signer, x509.OCSPNoCheck)
        text = x509_text(tmp_path, pki.get_certificate(signer.serial_number).pem)
        assert "OCSP Signing" in text and "OCSP No Check" in text
        assert pki.ocsp_signer(ca_id).certificate == signer
    for ca in (root, issuing, manufacturing):
        assert pki.latest_crl_record(ca.ca_id).number == 1
        x509.load_der_x509_crl(pki.latest_crl(ca.ca_id)).is_signature_valid(
            ca.certificate.public_key()  # type: ignore[arg-type]
        )
        # CA keys are encrypted PKCS#8 files under the key directory, never clear.
        key_file = Path(ca.key_uri.removeprefix("file://"))
        assert key_file.parent == tmp_path / "ca"
        assert key_file.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with db.engine.connect() as conn:
        types = conn.execute(select(OutboxRow.type).order_by(OutboxRow.id)).scalars().all()
    assert types.count("ca.created") == 3
    assert types.count("credential.issued") == 4  # two intermediates, two OCSP signers
    assert types.count("crl.generated") == 3


def test_the_root_key_is_not_kept_open(keyring: Keyring, hierarchy: Hierarchy) -> None:
    assert hierarchy.root.key_uri not in keyring._online
    assert hierarchy.issuing.key_uri in keyring._online


def test_a_second_init_is_refused_and_changes_nothing(
    db: Database, pki: PkiService, hierarchy: Hierarchy, tmp_path: Path
) -> None:
    before = snapshot_tables(db)
    files = sorted((tmp_path / "ca").iterdir())
    with pytest.raises(HierarchyExists):
        pki.init_hierarchy(actor=ACTOR)
    assert snapshot_tables(db) == before
    assert sorted((tmp_path / "ca").iterdir()) == files


@pytest.mark.parametrize(
    "algorithm", [KeyAlgorithm.ECDSA_P384, KeyAlgorithm.ED25519, KeyAlgorithm.RSA_3072]
)
def test_every_ca_algorithm_issues_chains_openssl_accepts(
    sqlite_db: Database,
    clock: FixedClock,
    keyring: Keyring,
    tmp_path: Path,
    algorithm: KeyAlgorithm,
) -> None:
    pki = PkiService(sqlite_db, clock, keyring)
    made = pki.init_hierarchy(actor=ACTOR, algorithm=algorithm)
    assert made.issuing.algorithm is algorithm
    unit = IdentityService(sqlite_db, clock).register(UnitSpec("arm", {}), actor=ACTOR)
    cert = pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, actor=ACTOR)
    result = verify(
        tmp_path,
        root=made.root.pem,
        intermediate=made.issuing.pem,
        leaf=cert.pem,
        at=clock.now(),
        crl_pem=pki.latest_crl_record(made.issuing.ca_id).pem,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    expected = {"ecdsa-p384": "ecdsa-with-SHA384", "ed25519": "ED25519"}
    assert expected.get(algorithm.value, "sha256WithRSAEncryption") in x509_text(tmp_path, cert.pem)


def test_rotation_keeps_old_certificates_verifiable(
    pki: PkiService,
    hierarchy: Hierarchy,
    unit: PhysicalIdentity,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    old_cert = pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, actor=ACTOR)
    new_ca = pki.rotate_intermediate(actor=ACTOR)
    old_ca = pki.get_ca(hierarchy.issuing.ca_id)
    assert old_ca.status is CaStatus.RETIRED and old_ca.retired_at == clock.now()
    assert pki.active_ca(CaRole.ISSUING) == new_ca
    assert new_ca.parent_id == hierarchy.root.ca_id
    new_cert = pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, actor=ACTOR)
    assert new_cert.issuer_ca_id == new_ca.ca_id
    assert pki.chain_pem() == new_ca.pem + hierarchy.root.pem

    for ca, cert in ((old_ca, old_cert), (new_ca, new_cert)):
        result = verify(
            tmp_path, root=hierarchy.root.pem, intermediate=ca.pem, leaf=cert.pem, at=clock.now()
        )
        assert result.returncode == 0, result.stdout + result.stderr
    # The retired CA still answers for what it issued: CRL and OCSP signer.
    pki.revoke(old_cert.serial, "keyCompromise", actor=ACTOR)
    crl = pki.latest_crl_record(old_ca.ca_id)
    assert crl.number == 2
    assert x509.load_der_x509_crl(crl.der).get_revoked_certificate_by_serial_number(old_cert.serial)
    revoked = verify(
        tmp_path,
        root=hierarchy.root.pem,
        intermediate=old_ca.pem,
        leaf=old_cert.pem,
        at=clock.now(),
        crl_pem=crl.pem,
    )
    assert "certificate revoked" in revoked.stdout + revoked.stderr
    assert pki.ocsp_signer(old_ca.certificate).ca_id == old_ca.ca_id


def test_rotation_with_the_callers_root_key_and_with_a_wrong_one(
    db: Database, pki: PkiService, hierarchy: Hierarchy, keyring: Keyring
) -> None:
    with keyring.offline(hierarchy.root.key_uri) as root_key:
        rotated = pki.rotate_intermediate(root_key, role=CaRole.MANUFACTURING, actor=ACTOR)
    assert rotated.role is CaRole.MANUFACTURING
    assert pki.get_ca(hierarchy.manufacturing.ca_id).status is CaStatus.RETIRED
    before = snapshot_tables(db)
    not_root = keyring.online(hierarchy.issuing.key_uri)
    with pytest.raises(CaKeyMismatch):
        pki.rotate_intermediate(not_root, actor=ACTOR)
    assert snapshot_tables(db) == before


def test_import_company_root_then_certify_devicetrust_intermediates(
    db: Database,
    pki: PkiService,
    identity: IdentityService,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    root_cert, root_key = company_ca(clock.now(), "Example Motors Root")
    imported = pki.import_external_ca(
        pem(root_cert),
        role=CaRole.ROOT,
        key_pem=encrypted_key(root_key),
        key_pem_password=b"company-transport-password",
        actor=ACTOR,
    )
    assert imported.external and imported.role is CaRole.ROOT
    issuing = pki.rotate_intermediate(actor=ACTOR)
    pki.rotate_intermediate(role=CaRole.MANUFACTURING, actor=ACTOR)
    unit = identity.register(UnitSpec("arm", {}), actor=ACTOR)
    cert = pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, actor=ACTOR)
    result = verify(
        tmp_path,
        root=pem(root_cert).decode(),
        intermediate=issuing.pem,
        leaf=cert.pem,
        at=clock.now(),
        crl_pem=pki.latest_crl_record(issuing.ca_id).pem,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_company_intermediate_as_issuing_ca_with_its_chain(
    pki: PkiService,
    hierarchy: Hierarchy,
    unit: PhysicalIdentity,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    company_root = company_ca(clock.now(), "Example Motors Root")
    intermediate, key = company_ca(clock.now(), "Example Motors Devices", issuer=company_root)
    imported = pki.import_external_ca(
        pem(intermediate),
        role=CaRole.ISSUING,
        key_pem=encrypted_key(key),
        key_pem_password=b"company-transport-password",
        chain_pem=pem(company_root[0]),
        actor=ACTOR,
    )
    assert pki.get_ca(hierarchy.issuing.ca_id).status is CaStatus.RETIRED
    assert pki.chain_pem() == imported.pem + pem(company_root[0]).decode()
    cert = pki.issue_from_csr(make_csr(ec_key()), unit.physical_id, actor=ACTOR)
    assert cert.issuer_ca_id == imported.ca_id
    assert pki.ocsp_signer(imported.ca_id).issuer == intermediate
    result = verify(
        tmp_path,
        root=pem(company_root[0]).decode(),
        intermediate=imported.pem,
        leaf=cert.pem,
        at=clock.now(),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_refuses_bad_material_and_changes_nothing(
    db: Database, pki: PkiService, hierarchy: Hierarchy, clock: FixedClock, tmp_path: Path
) -> None:
    now = clock.now()
    good_cert, good_key = company_ca(now, "Good CA")
    leaf_cert, leaf_key = company_ca(now, "Not a CA", ca=False)
    no_crl_cert, no_crl_key = company_ca(now, "No cRLSign", crl_sign=False)
    short_cert, short_key = company_ca(now, "pathlen 0", path_length=0)
    other_key = ec_key()
    good = {"key_pem_password": b"company-transport-password", "actor": ACTOR}
    cases: list[tuple[str, Any]] = [
        (
            "pki.ca_certificate_invalid",
            lambda: pki.import_external_ca(b"junk", **good, key_pem=b"x", role=CaRole.ISSUING),
        ),
        (
            "pki.ca_certificate_invalid",
            lambda: pki.import_external_ca(
                pem(leaf_cert), key_pem=encrypted_key(leaf_key), role=CaRole.ISSUING, **good
            ),
        ),
        (
            "pki.ca_certificate_invalid",
            lambda: pki.import_external_ca(
                pem(no_crl_cert), key_pem=encrypted_key(no_crl_key), role=CaRole.ISSUING, **good
            ),
        ),
        (
            "pki.ca_certificate_invalid",
            lambda: pki.import_external_ca(
                pem(short_cert), key_pem=encrypted_key(short_key), role=CaRole.ROOT, **good
            ),
        ),
        (
            "pki.ca_certificate_invalid",
            lambda: pki.import_external_ca(
                pem(good_cert),
                key_pem=encrypted_key(good_key),
                chain_pem=pem(leaf_cert),
                role=CaRole.ISSUING,
                **good,
            ),
        ),
        (
            "pki.ca_key_mismatch",
            lambda: pki.import_external_ca(
                pem(good_cert), key_pem=encrypted_key(other_key), role=CaRole.ISSUING, **good
            ),
        ),
        (
            "pki.ca_key_mismatch",
            lambda: pki.import_external_ca(
                pem(good_cert), key_uri=hierarchy.issuing.key_uri, role=CaRole.ISSUING, actor=ACTOR
            ),
        ),
        (
            "pki.key_not_protected",
            lambda: pki.import_external_ca(
                pem(good_cert), key_pem=clear_key(good_key), role=CaRole.ISSUING, actor=ACTOR
            ),
        ),
        (
            "pki.invalid_request",
            lambda: pki.import_external_ca(
                pem(good_cert),
                key_pem=encrypted_key(good_key),
                key_pem_password=b"wrong",
                role=CaRole.ISSUING,
                actor=ACTOR,
            ),
        ),
        (
            "pki.ca_exists",
            lambda: pki.import_external_ca(
                hierarchy.issuing.pem,
                key_uri=hierarchy.issuing.key_uri,
                role=CaRole.ISSUING,
                actor=ACTOR,
            ),
        ),
    ]
    before = snapshot_tables(db)
    files = sorted((tmp_path / "ca").iterdir())
    for code, call in cases:
        with pytest.raises(DeviceTrustError) as caught:
            call()
        assert getattr(caught.value, "code", None) == code, (code, caught.value)
    assert snapshot_tables(db) == before
    assert sorted((tmp_path / "ca").iterdir()) == files

"""X.509 attestation with real birth certificates from the manufacturing CA: challenge,
signature over the nonce and the CSR, chain and revocation, hardware-key policy."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from devicetrust.domain import FixedClock
from devicetrust.domain.errors import DeviceTrustError
from devicetrust.domain.ids import new_physical_id
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.pki import CaRole, Hierarchy, PkiService
from devicetrust.pki.csr import spki_sha256
from devicetrust.provisioning import (
    Allocation,
    AllocationPolicy,
    AttestationFailed,
    AttestationKind,
    CsrKeyMismatch,
    ProvisioningService,
    RegistrationRequest,
    RegistrationStatus,
    challenge_message,
)
from devicetrust.provisioning.symmetric import b64url
from devicetrust.store.database import Database
from tests.conftest import snapshot_tables
from tests.provisioning.conftest import ACTOR, birth_certificate, csr_for, new_key

STATIC = Allocation(AllocationPolicy.STATIC, static_name="line-03-left-welding-12")  # type: ignore[arg-type]


def signed_request(
    service: ProvisioningService,
    physical_id: str,
    birth_key: ec.EllipticCurvePrivateKey,
    birth_pem: str,
    *,
    csr: bytes | None = None,
    signer: ec.EllipticCurvePrivateKey | None = None,
) -> RegistrationRequest:
    challenge = service.challenge(physical_id, AttestationKind.X509, source="10.0.0.2")
    csr = csr or csr_for(new_key())
    message = challenge_message(
        challenge.challenge_id, challenge.payload["nonce"], physical_id, csr
    )
    signature = (signer or birth_key).sign(message, ec.ECDSA(hashes.SHA256()))
    return RegistrationRequest(
        physical_id=physical_id,  # type: ignore[arg-type]
        method=AttestationKind.X509,
        csr=csr,
        evidence={
            "challenge_id": challenge.challenge_id,
            "birth_chain": birth_pem,
            "signature": b64url(signature),
        },
        source="10.0.0.2",
    )


@pytest.fixture
def born(
    pki: PkiService, units: list[PhysicalIdentity]
) -> tuple[str, ec.EllipticCurvePrivateKey, str]:
    pid = units[0].physical_id
    key = new_key()
    return pid, key, birth_certificate(pki, pid, key)


def test_group_x509_provisioning_with_a_real_birth_certificate(
    service: ProvisioningService,
    pki: PkiService,
    hierarchy: Hierarchy,
    clock: FixedClock,
    born: tuple[str, ec.EllipticCurvePrivateKey, str],
    tmp_path: Path,
) -> None:
    pid, key, pem = born
    service.enrollments.create_x509_group(
        "factory-a", hierarchy.manufacturing.ca_id, STATIC, actor=ACTOR
    )
    result = service.provision(signed_request(service, pid, key, pem))
    assert result.status is RegistrationStatus.ASSIGNED
    assert result.logical_name == "line-03-left-welding-12"
    (tmp_path / "leaf.pem").write_text(result.certificate_pem or "")
    (tmp_path / "chain.pem").write_text(pki.chain_pem(CaRole.ISSUING))
    done = subprocess.run(
        [
            "openssl",
            "verify",
            "-attime",
            str(int(clock.now().timestamp())),
            "-CAfile",
            tmp_path / "chain.pem",
            tmp_path / "leaf.pem",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_individual_x509_with_hardware_key_policy(
    service: ProvisioningService,
    born: tuple[str, ec.EllipticCurvePrivateKey, str],
) -> None:
    pid, key, pem = born
    service.enrollments.create_individual(
        pid,
        AttestationKind.X509,
        STATIC,
        key_fingerprint="sha256:" + spki_sha256(key.public_key()),
        require_hardware_key=True,
        actor=ACTOR,
    )
    with pytest.raises(CsrKeyMismatch) as err:
        service.provision(signed_request(service, pid, key, pem))  # a fresh operational key
    assert err.value.code == "provisioning.csr_key_mismatch"
    result = service.provision(signed_request(service, pid, key, pem, csr=csr_for(key)))
    assert result.status is RegistrationStatus.ASSIGNED


def test_challenge_single_use_and_bad_signatures(
    service: ProvisioningService,
    hierarchy: Hierarchy,
    born: tuple[str, ec.EllipticCurvePrivateKey, str],
) -> None:
    pid, key, pem = born
    service.enrollments.create_x509_group(
        "factory-a", hierarchy.manufacturing.ca_id, STATIC, actor=ACTOR
    )
    with pytest.raises(AttestationFailed) as err:
        service.provision(signed_request(service, pid, key, pem, signer=new_key()))
    assert err.value.code == "provisioning.signature_invalid"
    request = signed_request(service, pid, key, pem)
    moved = RegistrationRequest(pid, request.method, csr_for(new_key()), request.evidence)  # type: ignore[arg-type]
    with pytest.raises(AttestationFailed) as err:
        service.provision(moved)  # signature was over another CSR
    assert err.value.code == "provisioning.signature_invalid"
    service.provision(request)
    with pytest.raises(AttestationFailed) as err:
        service.provision(request)
    assert err.value.code == "provisioning.challenge_invalid"


def test_birth_certificate_of_another_unit_or_revoked(
    service: ProvisioningService,
    pki: PkiService,
    hierarchy: Hierarchy,
    units: list[PhysicalIdentity],
    born: tuple[str, ec.EllipticCurvePrivateKey, str],
) -> None:
    pid, key, pem = born
    service.enrollments.create_x509_group(
        "factory-a", hierarchy.manufacturing.ca_id, STATIC, actor=ACTOR
    )
    other = units[1].physical_id
    with pytest.raises(AttestationFailed) as err:
        service.provision(signed_request(service, other, key, pem))
    assert err.value.code == "provisioning.wrong_device"
    serial = pki.list_certificates(physical_id=pid)[0].serial
    pki.revoke(serial, "keyCompromise", actor=ACTOR)
    with pytest.raises(AttestationFailed) as err:
        service.provision(signed_request(service, pid, key, pem))
    assert err.value.code == "provisioning.birth_cert_refused"
    assert err.value.details["cert_code"] == "auth.cert_revoked"


def test_individual_enrollment_of_another_key(
    service: ProvisioningService, born: tuple[str, ec.EllipticCurvePrivateKey, str]
) -> None:
    pid, key, pem = born
    service.enrollments.create_individual(
        pid,
        AttestationKind.X509,
        STATIC,
        key_fingerprint=spki_sha256(new_key().public_key()),
        actor=ACTOR,
    )
    with pytest.raises(AttestationFailed) as err:
        service.provision(signed_request(service, pid, key, pem))
    assert err.value.code == "provisioning.key_not_enrolled"


def test_hardware_key_mismatch_changes_nothing_but_the_audit_log(
    service: ProvisioningService,
    db: Database,
    born: tuple[str, ec.EllipticCurvePrivateKey, str],
) -> None:
    pid, key, pem = born
    service.enrollments.create_individual(
        pid,
        AttestationKind.X509,
        STATIC,
        key_fingerprint=spki_sha256(key.public_key()),
        require_hardware_key=True,
        actor=ACTOR,
    )
    request = signed_request(service, pid, key, pem)
    before = snapshot_tables(db)
    with pytest.raises(CsrKeyMismatch):
        service.provision(request)
    after = snapshot_tables(db)
    assert {t for t in before if before[t] != after[t]} == {"audit_log", "audit_head"}
    # the challenge was not burnt: the device may retry it with the right CSR
    assert service.provision(signed_request(service, pid, key, pem, csr=csr_for(key))).serial


def test_challenges_expire_and_are_purged(
    service: ProvisioningService,
    hierarchy: Hierarchy,
    clock: FixedClock,
    born: tuple[str, ec.EllipticCurvePrivateKey, str],
) -> None:
    pid, key, pem = born
    service.enrollments.create_x509_group(
        "factory-a", hierarchy.manufacturing.ca_id, STATIC, actor=ACTOR
    )
    request = signed_request(service, pid, key, pem)
    clock.advance(timedelta(minutes=5, seconds=1))
    with pytest.raises(AttestationFailed) as err:
        service.provision(request)
    assert err.value.code == "provisioning.challenge_invalid"
    assert service.purge_expired() == 1
    with pytest.raises(DeviceTrustError) as unknown:
        service.challenge(new_physical_id(), AttestationKind.X509)
    assert unknown.value.code == "provisioning.unknown_device"


def test_a_group_must_name_the_manufacturing_ca(
    service: ProvisioningService, hierarchy: Hierarchy
) -> None:
    with pytest.raises(DeviceTrustError) as err:
        service.enrollments.create_x509_group("wrong", hierarchy.issuing.ca_id, STATIC, actor=ACTOR)
    assert err.value.code == "provisioning.invalid_enrollment"

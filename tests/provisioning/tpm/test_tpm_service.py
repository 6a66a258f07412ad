"""TPM provisioning through `ProvisioningService` (SQLite and PostgreSQL): the factory enrolls
the EK, the device answers the service's challenge from swtpm and receives an operational
certificate for its TPM key; a replay and a software key under a hardware-key policy refuse."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from devicetrust.device.tpm import TpmKeystore, answer_challenge, challenge_request
from devicetrust.domain import FixedClock
from devicetrust.domain.clock import SystemClock
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService
from devicetrust.pki import Hierarchy, PkiService
from devicetrust.pki.csr import spki_sha256
from devicetrust.provisioning import (
    Allocation,
    AllocationPolicy,
    AttestationFailed,
    AttestationKind,
    CsrKeyMismatch,
    DataPlane,
    ProvisioningService,
    RegistrationRequest,
    RegistrationStatus,
)
from devicetrust.provisioning.tpm import EkTrust, TpmAttestation, register_endorsement_key
from devicetrust.store.database import Database
from devicetrust.vault import Vault
from tests.provisioning.conftest import ACTOR, csr_for, new_key
from tests.provisioning.tpm.conftest import Swtpm

STATIC = Allocation(AllocationPolicy.STATIC, static_name="line-03-left-welding-12")  # type: ignore[arg-type]


@pytest.fixture
def tpm_service(
    db: Database,
    clock: FixedClock,
    identity: IdentityService,
    pki: PkiService,
    hierarchy: Hierarchy,
    vault: Vault,
) -> ProvisioningService:
    return ProvisioningService(
        db,
        clock,
        identity,
        pki,
        vault,
        methods=(TpmAttestation(),),
        data_plane=DataPlane("mqtt.example", 8883),
    )


def _enroll(service: ProvisioningService, tpm: Swtpm, trust: EkTrust, physical_id: str) -> None:
    with TpmKeystore(tpm.tcti) as keystore:
        ek = keystore.endorsement_key()
    registered = register_endorsement_key(
        public=ek.public, certificate=ek.certificate, trust=trust, at=SystemClock().now()
    )
    service.enrollments.create_individual(
        physical_id,
        AttestationKind.TPM,
        STATIC,
        tpm_ek_public=registered.public,
        tpm_ek_certificate=registered.certificate,
        require_hardware_key=True,
        actor=ACTOR,
    )


def _request(
    service: ProvisioningService, tpm: Swtpm, physical_id: str, *, software_csr: bool = False
) -> tuple[RegistrationRequest, x509.CertificateSigningRequest]:
    with TpmKeystore(tpm.tcti) as keystore:
        issued = service.challenge(
            physical_id, AttestationKind.TPM, evidence=challenge_request(keystore)
        )
        key = keystore.create_key()
        evidence = answer_challenge(keystore, key, issued.challenge_id, issued.payload)
        csr = keystore.create_csr(key, x509.Name([]))
    pem = csr_for(new_key()) if software_csr else csr.public_bytes(Encoding.PEM)
    return RegistrationRequest(physical_id, AttestationKind.TPM, pem, evidence), csr  # type: ignore[arg-type]


def test_tpm_provisioning_issues_a_certificate_for_the_tpm_key(
    tpm_service: ProvisioningService,
    device_tpm: Swtpm,
    ek_trust: EkTrust,
    units: list[PhysicalIdentity],
) -> None:
    pid = units[0].physical_id
    _enroll(tpm_service, device_tpm, ek_trust, pid)
    request, csr = _request(tpm_service, device_tpm, pid)

    result = tpm_service.provision(request)

    assert result.status is RegistrationStatus.ASSIGNED
    assert result.logical_name == "line-03-left-welding-12"
    certificate = x509.load_pem_x509_certificate((result.certificate_pem or "").encode())
    assert spki_sha256(certificate.public_key()) == spki_sha256(csr.public_key())  # type: ignore[arg-type]

    with pytest.raises(AttestationFailed) as replayed:
        tpm_service.provision(request)
    assert replayed.value.code == "provisioning.challenge_invalid"


def test_software_key_under_a_hardware_key_policy_is_refused(
    tpm_service: ProvisioningService,
    device_tpm: Swtpm,
    ek_trust: EkTrust,
    units: list[PhysicalIdentity],
) -> None:
    pid = units[0].physical_id
    _enroll(tpm_service, device_tpm, ek_trust, pid)
    request, _ = _request(tpm_service, device_tpm, pid, software_csr=True)
    with pytest.raises(CsrKeyMismatch):
        tpm_service.provision(request)

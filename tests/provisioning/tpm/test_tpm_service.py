"""TPM provisioning through `ProvisioningService` (SQLite and PostgreSQL): the factory enrolls
the EK, the device answers the service's challenge from swtpm and receives an operational
certificate for its TPM key; a replay and a software key under a hardware-key policy refuse."""

from __future__ import annotations

import pytest
from cryptography import x509

from devicetrust.domain import FixedClock
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService
from devicetrust.pki import Hierarchy, PkiService
from devicetrust.pki.csr import spki_sha256
from devicetrust.provisioning import (
    AttestationFailed,
    CsrKeyMismatch,
    DataPlane,
    ProvisioningService,
    RegistrationStatus,
)
from devicetrust.provisioning.tpm import EkTrust, TpmAttestation
from devicetrust.store.database import Database
from devicetrust.vault import Vault
from tests.provisioning.tpm.conftest import Swtpm
from tests.provisioning.tpm.service_flows import enroll_tpm, tpm_request


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


def test_tpm_provisioning_issues_a_certificate_for_the_tpm_key(
    tpm_service: ProvisioningService,
    device_tpm: Swtpm,
    ek_trust: EkTrust,
    units: list[PhysicalIdentity],
) -> None:
    pid = units[0].physical_id
    enroll_tpm(tpm_service, device_tpm, ek_trust, pid)
    request, csr = tpm_request(tpm_service, device_tpm, pid)

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
    enroll_tpm(tpm_service, device_tpm, ek_trust, pid)
    request, _ = tpm_request(tpm_service, device_tpm, pid, software_csr=True)
    with pytest.raises(CsrKeyMismatch):
        tpm_service.provision(request)

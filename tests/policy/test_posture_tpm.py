"""Key in hardware, proven: a unit provisioned through `ProvisioningService` with a swtpm
TPM (EK enrolled, credential activated, CSR signed inside the TPM) passes `key_in_hardware`
and `attestation`; renewing to a software key makes `key_in_hardware` fail. Skips without
swtpm on a laptop, fails in CI (the TPM suite's fixtures)."""

from __future__ import annotations

from devicetrust.domain.records import PhysicalIdentity
from devicetrust.pki import PkiService, Profile
from devicetrust.pki.csr import spki_sha256
from devicetrust.policy import PolicyService
from devicetrust.policy.posture import Measure, Status
from devicetrust.provisioning import ProvisioningService, RegistrationStatus
from devicetrust.provisioning.tpm import EkTrust
from tests.policy.conftest import ACTOR
from tests.provisioning.conftest import csr_for, new_key
from tests.provisioning.tpm.conftest import (  # noqa: F401 - fixtures used by name
    Swtpm,
    device_tpm,
    ek_trust,
    start_swtpm,
    swtpm_config,
)
from tests.provisioning.tpm.service_flows import enroll_tpm, tpm_request
from tests.provisioning.tpm.test_tpm_service import tpm_service  # noqa: F401 - fixture


def test_a_tpm_held_key_passes_and_a_software_renewal_fails(
    policy: PolicyService,
    tpm_service: ProvisioningService,  # noqa: F811
    pki: PkiService,
    device_tpm: Swtpm,  # noqa: F811
    ek_trust: EkTrust,  # noqa: F811
    units: list[PhysicalIdentity],
) -> None:
    pid = units[0].physical_id
    enroll_tpm(tpm_service, device_tpm, ek_trust, pid)
    request, csr = tpm_request(tpm_service, device_tpm, pid)
    assert tpm_service.provision(request).status is RegistrationStatus.ASSIGNED

    results = {r.measure: r for r in policy.posture.device(pid).measures}
    assert results[Measure.KEY_IN_HARDWARE].status is Status.PASS
    assert results[Measure.ATTESTATION].status is Status.PASS
    assert results[Measure.UNIQUE_IDENTITY].status is Status.PASS

    tpm_key = spki_sha256(csr.public_key())  # type: ignore[arg-type]
    assert policy.posture.key_attested(pid, tpm_key)
    software = new_key()
    assert not policy.posture.key_attested(pid, spki_sha256(software.public_key()))
    pki.issue_from_csr(csr_for(software), pid, Profile.DEVICE, actor=ACTOR)
    after = {r.measure: r.status for r in policy.posture.device(pid).measures}
    assert after[Measure.KEY_IN_HARDWARE] is Status.FAIL

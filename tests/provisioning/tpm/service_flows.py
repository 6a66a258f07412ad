"""One unit's TPM provisioning through `ProvisioningService`, as the factory and the device
run it: the EK enrolled (individual enrollment binding the CSR key to the TPM), then the
challenge answered from swtpm with a key born in the TPM (and, when the server asks, the
AK's quote of the boot PCRs)."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from devicetrust.device.tpm import TpmKeystore, answer_challenge, challenge_request
from devicetrust.domain.clock import SystemClock
from devicetrust.provisioning import (
    Allocation,
    AllocationPolicy,
    AttestationKind,
    ProvisioningService,
    RegistrationRequest,
)
from devicetrust.provisioning.tpm import EkTrust, register_endorsement_key
from tests.provisioning.conftest import ACTOR, csr_for, new_key
from tests.provisioning.tpm.conftest import Swtpm

STATIC = Allocation(AllocationPolicy.STATIC, static_name="line-03-left-welding-12")  # type: ignore[arg-type]


def enroll_tpm(
    service: ProvisioningService,
    tpm: Swtpm,
    trust: EkTrust,
    physical_id: str,
    *,
    require_hardware_key: bool = True,
) -> None:
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
        require_hardware_key=require_hardware_key,
        actor=ACTOR,
    )


def tpm_request(
    service: ProvisioningService, tpm: Swtpm, physical_id: str, *, software_csr: bool = False
) -> tuple[RegistrationRequest, x509.CertificateSigningRequest]:
    """The registration of `physical_id` with the TPM's evidence, and the CSR of its TPM key
    (`software_csr`: the request carries a CSR of a software key instead)."""
    with TpmKeystore(tpm.tcti) as keystore:
        issued = service.challenge(
            physical_id, AttestationKind.TPM, evidence=challenge_request(keystore)
        )
        key = keystore.create_key()
        evidence = answer_challenge(keystore, key, issued.challenge_id, issued.payload)
        csr = keystore.create_csr(key, x509.Name([]))
    pem = csr_for(new_key()) if software_csr else csr.public_bytes(Encoding.PEM)
    return RegistrationRequest(physical_id, AttestationKind.TPM, pem, evidence), csr  # type: ignore[arg-type]

"""The device's side of one TPM provisioning, as a device would run it against the method."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from devicetrust.device.tpm import (
    EndorsementKeyType,
    TpmKey,
    TpmKeystore,
    answer_challenge,
    challenge_request,
)
from devicetrust.domain.ids import PhysicalId
from devicetrust.provisioning.methods import RegistrationRequest
from devicetrust.provisioning.records import AttestationKind, Enrollment
from devicetrust.provisioning.tpm import TpmAttestation
from tests.provisioning.tpm.conftest import ChallengeBook, Swtpm


@dataclass(frozen=True)
class Attempt:
    request: RegistrationRequest
    csr: x509.CertificateSigningRequest
    key: TpmKey
    challenge_id: str

    def with_evidence(self, **changes: str) -> RegistrationRequest:
        evidence = {**self.request.evidence, **changes}
        return RegistrationRequest(
            self.request.physical_id, AttestationKind.TPM, self.request.csr, evidence
        )


def device_attempt(
    tpm: Swtpm,
    unit: PhysicalId,
    enrollment: Enrollment,
    book: ChallengeBook,
    ek_type: EndorsementKeyType = EndorsementKeyType.RSA_2048,
) -> Attempt:
    """Ask for a challenge, answer it, and build the CSR of a new TPM key."""
    method = TpmAttestation()
    with TpmKeystore(tpm.tcti, ek_type=ek_type) as keystore:
        new = method.new_challenge(unit, enrollment, challenge_request(keystore))
        challenge_id = book.record(unit, new)
        key = keystore.create_key()
        evidence = answer_challenge(keystore, key, challenge_id, new.payload)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(unit))])
        csr = keystore.create_csr(key, subject)
    request = RegistrationRequest(
        unit, AttestationKind.TPM, csr.public_bytes(Encoding.PEM), evidence
    )
    return Attempt(request, csr, key, challenge_id)

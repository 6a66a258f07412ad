"""Provisioning: enrollments, attestation (x509, symmetric key, TPM), allocation of logical
identities, and the operational credentials a provisioned device receives.

    service = ProvisioningService(db, clock, identity, pki, sealer, data_plane=DataPlane(...))
    shown = service.enrollments.create_symmetric_group("line-03", Allocation(POOL, pool_pattern=
        "line-03-left-welding-{01..24}"), actor="operator:alice")   # shown.key: once
    result = service.provision(RegistrationRequest(physical_id, AttestationKind.SYMMETRIC_KEY,
        csr_pem, {"token": encode_token(device_key, physical_id, exp, nonce)}))

Attestation methods implement `AttestationMethod` (`methods.py`): they only decide; the
service burns single-use values, the registry binds and the CA signs. Never stores a key in
clear and never returns a certificate the CA has not recorded.
"""

from devicetrust.provisioning.allocation import PoolPattern, next_free
from devicetrust.provisioning.enrollments import Enrollments, derive_key
from devicetrust.provisioning.errors import (
    AttestationFailed,
    CsrKeyMismatch,
    EnrollmentExists,
    EnrollmentNotFound,
    EnrollmentRefused,
    InvalidEnrollment,
    InvalidPoolPattern,
    MalformedEvidence,
    NameHeld,
    NotPending,
    PoolExhausted,
    RateLimited,
    RefusalReason,
    RegistrationNotFound,
    UnknownDevice,
)
from devicetrust.provisioning.methods import (
    AttestationContext,
    AttestationMethod,
    Authorization,
    ChallengingMethod,
    NewChallenge,
    RegistrationRequest,
    SingleUse,
    StoredChallenge,
)
from devicetrust.provisioning.ratelimit import FailureLimiter
from devicetrust.provisioning.records import (
    Allocation,
    AllocationPolicy,
    AttestationKind,
    DataPlane,
    Enrollment,
    EnrollmentKind,
    KeyShown,
    ProvisioningResult,
    Registration,
    RegistrationStatus,
    Reprovision,
)
from devicetrust.provisioning.service import IssuedChallenge, ProvisioningService
from devicetrust.provisioning.symmetric import SymmetricKeyMethod, encode_token
from devicetrust.provisioning.x509 import X509Method, challenge_message

__all__ = [
    "Allocation",
    "AllocationPolicy",
    "AttestationContext",
    "AttestationFailed",
    "AttestationKind",
    "AttestationMethod",
    "Authorization",
    "ChallengingMethod",
    "CsrKeyMismatch",
    "DataPlane",
    "Enrollment",
    "EnrollmentExists",
    "EnrollmentKind",
    "EnrollmentNotFound",
    "EnrollmentRefused",
    "Enrollments",
    "FailureLimiter",
    "InvalidEnrollment",
    "InvalidPoolPattern",
    "IssuedChallenge",
    "KeyShown",
    "MalformedEvidence",
    "NameHeld",
    "NewChallenge",
    "NotPending",
    "PoolExhausted",
    "PoolPattern",
    "ProvisioningResult",
    "ProvisioningService",
    "RateLimited",
    "RefusalReason",
    "Registration",
    "RegistrationNotFound",
    "RegistrationRequest",
    "RegistrationStatus",
    "Reprovision",
    "SingleUse",
    "StoredChallenge",
    "SymmetricKeyMethod",
    "UnknownDevice",
    "X509Method",
    "challenge_message",
    "derive_key",
    "encode_token",
    "next_free",
]

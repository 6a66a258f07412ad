"""Typed failures of provisioning, each with one stable code.

    DeviceTrustError
    +-- InvalidInput
    |   +-- InvalidEnrollment        provisioning.invalid_enrollment   bad enrollment fields
    |   +-- InvalidPoolPattern       provisioning.invalid_pool_pattern not `prefix-{01..24}`
    |   +-- MalformedEvidence        provisioning.malformed_evidence   token/signature unreadable
    |   +-- ManifestInvalid          provisioning.manifest_invalid     manifest JSON malformed
    +-- Unauthorized (the device failed to prove who it is)
    |   +-- AttestationFailed        provisioning.<reason>             see `RefusalReason`
    +-- Forbidden
    |   +-- EnrollmentRefused        provisioning.enrollment_disabled / _expired / no_enrollment
    |   +-- CsrKeyMismatch           provisioning.csr_key_mismatch     CSR key is not the attested
    +-- NotFound
    |   +-- UnknownDevice            provisioning.unknown_device
    |   +-- EnrollmentNotFound       provisioning.enrollment_not_found
    |   +-- RegistrationNotFound     provisioning.registration_not_found
    +-- Conflict
    |   +-- PoolExhausted            provisioning.pool_exhausted
    |   +-- NameHeld                 provisioning.name_held            static name held by another
    |   +-- EnrollmentExists         provisioning.enrollment_exists
    |   +-- NotPending               provisioning.not_pending          approve of a non-pending unit
    +-- RateLimited (429)            provisioning.rate_limited

Never carries a secret (token, key, MAC, nonce) in a message or in `details`.
"""

from __future__ import annotations

import enum
from typing import Any

from devicetrust.domain.errors import (
    Conflict,
    DeviceTrustError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
)


class RefusalReason(enum.StrEnum):
    """Why an attestation was refused (the `code` of `AttestationFailed`)."""

    # Error codes, not secrets (S105 is about passwords in source).

    TOKEN_INVALID = "provisioning.token_invalid"  # noqa: S105  # wrong MAC or registration id
    TOKEN_EXPIRED = "provisioning.token_expired"  # noqa: S105
    TOKEN_TOO_LONG = "provisioning.token_lifetime_exceeded"  # noqa: S105
    TOKEN_REPLAYED = "provisioning.token_replayed"  # noqa: S105
    CHALLENGE_INVALID = "provisioning.challenge_invalid"  # unknown, used, expired, other unit
    SIGNATURE_INVALID = "provisioning.signature_invalid"
    BIRTH_CERT_REFUSED = "provisioning.birth_cert_refused"
    KEY_NOT_ENROLLED = "provisioning.key_not_enrolled"
    WRONG_DEVICE = "provisioning.wrong_device"  # evidence names another physical id
    TPM_REFUSED = "provisioning.tpm_refused"


class AttestationFailed(Unauthorized):
    def __init__(self, reason: RefusalReason, message: str, **details: Any) -> None:
        super().__init__(reason.value, message, **details)
        self.reason = reason


class InvalidEnrollment(InvalidInput):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("provisioning.invalid_enrollment", message, **details)


class InvalidPoolPattern(InvalidInput):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("provisioning.invalid_pool_pattern", message, **details)


class MalformedEvidence(InvalidInput):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("provisioning.malformed_evidence", message, **details)


class ManifestInvalid(InvalidInput):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("provisioning.manifest_invalid", message, **details)


class ManifestSignatureInvalid(Unauthorized):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("provisioning.manifest_signature_invalid", message, **details)


class EnrollmentRefused(Forbidden):
    """The enrollment exists but does not admit the device now (or none covers it)."""


class CsrKeyMismatch(Forbidden):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("provisioning.csr_key_mismatch", message, **details)


class UnknownDevice(NotFound):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("provisioning.unknown_device", message, **details)


class EnrollmentNotFound(NotFound):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("provisioning.enrollment_not_found", message, **details)


class RegistrationNotFound(NotFound):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("provisioning.registration_not_found", message, **details)


class PoolExhausted(Conflict):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("provisioning.pool_exhausted", message, **details)


class NameHeld(Conflict):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("provisioning.name_held", message, **details)


class EnrollmentExists(Conflict):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("provisioning.enrollment_exists", message, **details)


class NotPending(Conflict):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("provisioning.not_pending", message, **details)


class RateLimited(DeviceTrustError):
    status = 429
    exit_code = 7

    def __init__(self, message: str, *, retry_after: int, **details: Any) -> None:
        super().__init__("provisioning.rate_limited", message, retry_after=retry_after, **details)
        self.retry_after = retry_after

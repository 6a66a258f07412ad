"""Typed failures of the certificate authority, each with one stable code.

    DeviceTrustError
    +-- InvalidInput
    |   +-- CsrMalformed            pki.csr_malformed          garbage, truncated, too big
    |   +-- CsrBadSignature         pki.csr_bad_signature      no proof of possession of the key
    |   +-- WeakKey                 pki.weak_key               DSA, RSA < 2048, curve not approved
    |   +-- CsrWeakSignature        pki.csr_weak_signature     CSR signed with SHA-1 or weaker
    |   +-- CsrForbiddenRequest     pki.csr_forbidden_request  CA:TRUE, names the registry denies
    |   +-- InvalidRequest          pki.invalid_request        bad profile, DNS name, lifetime
    |   +-- InvalidSerial           pki.invalid_serial         not a positive hex/int serial
    |   +-- InvalidReason           pki.invalid_reason         not an RFC 5280 reason code
    |   +-- CaCertificateInvalid    pki.ca_certificate_invalid import: not a usable CA certificate
    |   +-- CaKeyMismatch           pki.ca_key_mismatch        import: key is not the cert's key
    +-- NotFound
    |   +-- CertificateNotFound     pki.certificate_not_found  no such serial (or not ours)
    |   +-- CaNotFound              pki.ca_not_found           no such CA id
    +-- Conflict
    |   +-- UnitNotLive             pki.unit_not_live          suspended/quarantined/decommissioned
    |   +-- UnitNotEligible         pki.unit_not_eligible      e.g. a birth cert for an active unit
    |   +-- KeyInUse                pki.key_in_use             key certified for another owner
    |   +-- KeyCompromised          pki.key_compromised        key of a keyCompromise revocation
    |   +-- KeyReuseRefused         pki.key_reuse_refused      policy demands a new key
    |   +-- AlreadyRevoked          pki.already_revoked
    |   +-- NotRenewable            pki.not_renewable          expired, revoked, or birth/OCSP cert
    |   +-- HierarchyExists         pki.hierarchy_exists       `init_hierarchy` twice
    |   +-- CaExists                pki.ca_exists              import of a CA already recorded
    +-- ConfigurationError
        +-- CaNotInitialised        pki.ca_not_initialised     no active CA of the needed role

Key backend failures (`pki.key_*`, `pki.hsm_failed`) come from `devicetrust.pki.keys`.
Never puts key material, a passphrase or a whole CSR in a message or in `details`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from devicetrust.domain.errors import (
    Conflict,
    InvalidInput,
    NotFound,
)


class CsrMalformed(InvalidInput):
    CODE: ClassVar[str] = "pki.csr_malformed"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class CsrBadSignature(InvalidInput):
    CODE: ClassVar[str] = "pki.csr_bad_signature"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class WeakKey(InvalidInput):
    CODE: ClassVar[str] = "pki.weak_key"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class CsrWeakSignature(InvalidInput):
    CODE: ClassVar[str] = "pki.csr_weak_signature"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class CsrForbiddenRequest(InvalidInput):
    CODE: ClassVar[str] = "pki.csr_forbidden_request"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class InvalidRequest(InvalidInput):
    CODE: ClassVar[str] = "pki.invalid_request"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class InvalidSerial(InvalidInput):
    CODE: ClassVar[str] = "pki.invalid_serial"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class InvalidReason(InvalidInput):
    CODE: ClassVar[str] = "pki.invalid_reason"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class CaCertificateInvalid(InvalidInput):
    CODE: ClassVar[str] = "pki.ca_certificate_invalid"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class CaKeyMismatch(InvalidInput):
    CODE: ClassVar[str] = "pki.ca_key_mismatch"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class CertificateNotFound(NotFound):
    CODE: ClassVar[str] = "pki.certificate_not_found"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class CaNotFound(NotFound):
    CODE: ClassVar[str] = "pki.ca_not_found"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class UnitNotLive(Conflict):
    CODE: ClassVar[str] = "pki.unit_not_live"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class UnitNotEligible(Conflict):
    CODE: ClassVar[str] = "pki.unit_not_eligible"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class KeyInUse(Conflict):
    CODE: ClassVar[str] = "pki.key_in_use"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class KeyCompromised(Conflict):
    CODE: ClassVar[str] = "pki.key_compromised"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class KeyReuseRefused(Conflict):
    CODE: ClassVar[str] = "pki.key_reuse_refused"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class AlreadyRevoked(Conflict):
    CODE: ClassVar[str] = "pki.already_revoked"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class NotRenewable(Conflict):
    CODE: ClassVar[str] = "pki.not_renewable"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class HierarchyExists(Conflict):
    CODE: ClassVar[str] = "pki.hierarchy_exists"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class CaExists(Conflict):
    CODE: ClassVar[str] = "pki.ca_exists"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class CaNotInitialised(Conflict):
    CODE: ClassVar[str] = "pki.ca_not_initialised"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)

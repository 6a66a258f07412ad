"""Wire schemas of the provisioning routes: device requests (`*In`), device answers, and the
operator's enrollment views (`*Out`).

Inputs refuse unknown fields and bound every string; the provisioning service judges meaning
(tokens, signatures, CSRs, names). Outputs never carry a sealed or clear key, except the one
answer that creates a symmetric-key enrollment (`KeyOnceOut.key`, shown once).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from devicetrust.api.instants import Instant
from devicetrust.provisioning import (
    Allocation,
    AllocationPolicy,
    AttestationKind,
    Enrollment,
    EnrollmentKind,
    IssuedChallenge,
    ProvisioningResult,
    Registration,
    RegistrationStatus,
    Reprovision,
)

MAX_PEM = 64 * 1024
Ident = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Pem = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PEM)]
B64 = Annotated[str, StringConstraints(min_length=1, max_length=16384)]
Evidence = Annotated[dict[str, Any], Field(max_length=16)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChallengeIn(_In):
    physical_id: Ident
    method: AttestationKind
    evidence: Evidence = Field(default_factory=dict, description="TPM: ak_public; x509: none")


class ChallengeOut(BaseModel):
    challenge_id: str
    physical_id: str
    payload: dict[str, str]
    expires_at: datetime

    @classmethod
    def of(cls, challenge: IssuedChallenge) -> Self:
        return cls(
            challenge_id=challenge.challenge_id,
            physical_id=challenge.physical_id,
            payload=challenge.payload,
            expires_at=challenge.expires_at,
        )


class RegisterIn(_In):
    physical_id: Ident = Field(description="the registration id: the unit's physical id")
    method: AttestationKind
    csr: Pem = Field(description="PKCS#10 PEM of the operational key")
    evidence: Evidence = Field(
        description="symmetric-key: {token}; x509: {challenge_id, birth_chain, signature}"
    )


class ProvisionedOut(BaseModel):
    physical_id: str
    status: RegistrationStatus
    logical_name: str | None = None
    certificate_pem: str | None = None
    chain_pem: str | None = None
    serial: str | None = None
    not_after: datetime | None = None
    mqtt_host: str | None = None
    mqtt_port: int | None = None
    topics: dict[str, str] = Field(default_factory=dict)
    policy: dict[str, Any] = Field(default_factory=dict)
    retry_after: int | None = None

    @classmethod
    def of(cls, result: ProvisioningResult) -> Self:
        return cls(
            physical_id=result.physical_id,
            status=result.status,
            logical_name=result.logical_name,
            certificate_pem=result.certificate_pem,
            chain_pem=result.chain_pem,
            serial=result.serial,
            not_after=result.not_after,
            mqtt_host=result.mqtt_host,
            mqtt_port=result.mqtt_port,
            topics=dict(result.topics),
            policy=dict(result.policy),
            retry_after=result.retry_after,
        )


class StatusOut(BaseModel):
    """What anyone may learn of a registration: its status only (no name, no credential)."""

    physical_id: str
    status: RegistrationStatus
    retry_after: int | None = None


class AllocationIn(_In):
    policy: AllocationPolicy
    static_name: Name | None = None
    pool_pattern: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    reprovision: Reprovision = Reprovision.KEEP

    def value(self) -> Allocation:
        return Allocation(
            policy=self.policy,
            static_name=self.static_name,  # type: ignore[arg-type]  # checked by the service
            pool_pattern=self.pool_pattern,
            reprovision=self.reprovision,
        )


class IndividualIn(_In):
    physical_id: Ident
    attestation: AttestationKind
    allocation: AllocationIn
    name: Name | None = None
    key_fingerprint: Annotated[str, StringConstraints(max_length=71)] | None = None
    tpm_ek_public: B64 | None = Field(default=None, description="base64 TPM2B_PUBLIC of the EK")
    tpm_ek_certificate: B64 | None = Field(default=None, description="base64 DER EK certificate")
    expires_at: Instant | None = None
    replaces: Name | None = Field(default=None, description="logical name it may take over")
    require_hardware_key: bool = False


class GroupIn(_In):
    name: Name
    attestation: AttestationKind
    allocation: AllocationIn
    ca_id: Ident | None = Field(default=None, description="x509: the CA birth certs chain to")
    expires_at: Instant | None = None
    require_hardware_key: bool = False


class EnrollmentPatchIn(_In):
    enabled: bool | None = None
    expires_at: Instant | None = None
    clear_expiry: bool = False
    allocation: AllocationIn | None = None
    replaces: Name | None = None


class AllocationOut(BaseModel):
    policy: AllocationPolicy
    static_name: str | None
    pool_pattern: str | None
    reprovision: Reprovision


class EnrollmentOut(BaseModel):
    enrollment_id: str
    name: str
    kind: EnrollmentKind
    attestation: AttestationKind
    allocation: AllocationOut
    enabled: bool
    physical_id: str | None
    key_fingerprint: str | None
    ca_id: str | None
    has_sealed_key: bool
    expires_at: datetime | None
    replaces: str | None
    require_hardware_key: bool
    created_at: datetime
    created_by: str

    @classmethod
    def of(cls, enrollment: Enrollment) -> Self:
        allocation = enrollment.allocation
        return cls(
            enrollment_id=enrollment.enrollment_id,
            name=enrollment.name,
            kind=enrollment.kind,
            attestation=enrollment.attestation,
            allocation=AllocationOut(
                policy=allocation.policy,
                static_name=allocation.static_name,
                pool_pattern=allocation.pool_pattern,
                reprovision=allocation.reprovision,
            ),
            enabled=enrollment.enabled,
            physical_id=enrollment.physical_id,
            key_fingerprint=enrollment.key_fingerprint,
            ca_id=enrollment.ca_id,
            has_sealed_key=enrollment.sealed_key is not None,
            expires_at=enrollment.expires_at,
            replaces=enrollment.replaces,
            require_hardware_key=enrollment.require_hardware_key,
            created_at=enrollment.created_at,
            created_by=enrollment.created_by,
        )


class KeyOnceOut(BaseModel):
    """A new symmetric-key enrollment and its key (base64url): shown this once only."""

    enrollment: EnrollmentOut
    key: str


class EnrollmentPage(BaseModel):
    items: list[EnrollmentOut]
    limit: int
    offset: int


class RegistrationOut(BaseModel):
    physical_id: str
    enrollment_id: str
    status: RegistrationStatus
    logical_name: str | None
    requested_at: datetime
    updated_at: datetime
    serial: str | None

    @classmethod
    def of(cls, registration: Registration) -> Self:
        return cls(**registration.to_json())


class RegistrationPage(BaseModel):
    items: list[RegistrationOut]
    limit: int
    offset: int


class ApproveIn(_In):
    name: Name

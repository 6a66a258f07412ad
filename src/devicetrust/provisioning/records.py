"""Plain values of provisioning: enrollments, allocation policies, registrations, results.

Building one never touches the database, a key or the clock; none of them holds secret
material (sealed secrets stay sealed bytes; the clear group key exists only in the value
returned once by `create_group`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devicetrust.domain.ids import LogicalName, PhysicalId


class AttestationKind(enum.StrEnum):
    X509 = "x509"
    SYMMETRIC_KEY = "symmetric-key"
    TPM = "tpm"


class EnrollmentKind(enum.StrEnum):
    INDIVIDUAL = "individual"  # one physical identity
    GROUP = "group"  # every unit whose evidence chains to a CA or derives from a group key


class AllocationPolicy(enum.StrEnum):
    STATIC = "static"  # the logical name is written in the enrollment
    POOL = "pool"  # next free name of a pattern such as `line-03-left-welding-{01..24}`
    MANUAL = "manual"  # the unit waits until an operator assigns a name


class Reprovision(enum.StrEnum):
    """What provisioning an already provisioned unit does."""

    KEEP = "keep"  # return its current assignment
    REASSIGN = "reassign"  # apply what the enrollment's allocation now says


class RegistrationStatus(enum.StrEnum):
    PENDING = "pending"  # manual allocation: waiting for an operator
    APPROVED = "approved"  # an operator chose the name; the next registration applies it
    ASSIGNED = "assigned"  # bound and issued its operational certificate


@dataclass(frozen=True, slots=True)
class Allocation:
    policy: AllocationPolicy
    static_name: LogicalName | None = None
    pool_pattern: str | None = None
    reprovision: Reprovision = Reprovision.KEEP

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy.value,
            "static_name": self.static_name,
            "pool_pattern": self.pool_pattern,
            "reprovision": self.reprovision.value,
        }


@dataclass(frozen=True, slots=True)
class Enrollment:
    """Who may provision, how it proves it, and what it gets.

    Attestation material by kind and method (all public or sealed):
    individual x509: `key_fingerprint` (SHA-256 of the birth certificate's SPKI);
    individual symmetric-key: `sealed_key` (the per-device key, sealed by the vault);
    individual tpm: `tpm_ek_public` (DER SPKI) and optionally `tpm_ek_certificate` (DER);
    group x509: `ca_id` (birth certificates chaining to that CA);
    group symmetric-key: `sealed_key` (the group key, sealed by the vault).
    """

    enrollment_id: str
    name: str
    kind: EnrollmentKind
    attestation: AttestationKind
    allocation: Allocation
    enabled: bool
    created_at: datetime
    created_by: str
    physical_id: PhysicalId | None = None
    key_fingerprint: str | None = None
    ca_id: str | None = None
    sealed_key: bytes | None = field(default=None, repr=False)
    tpm_ek_public: bytes | None = None
    tpm_ek_certificate: bytes | None = None
    expires_at: datetime | None = None
    replaces: LogicalName | None = None  # pre-authorised takeover of this logical identity
    require_hardware_key: bool = False  # the CSR key must be the attested key

    def active_at(self, at: datetime) -> bool:
        return self.enabled and (self.expires_at is None or at < self.expires_at)

    def to_json(self) -> dict[str, Any]:
        """Everything but sealed material (shown as a flag only)."""
        return {
            "enrollment_id": self.enrollment_id,
            "name": self.name,
            "kind": self.kind.value,
            "attestation": self.attestation.value,
            "allocation": self.allocation.to_json(),
            "enabled": self.enabled,
            "physical_id": self.physical_id,
            "key_fingerprint": self.key_fingerprint,
            "ca_id": self.ca_id,
            "has_sealed_key": self.sealed_key is not None,
            "tpm_ek_public": self.tpm_ek_public is not None,
            "tpm_ek_certificate": self.tpm_ek_certificate is not None,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "replaces": self.replaces,
            "require_hardware_key": self.require_hardware_key,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


@dataclass(frozen=True, slots=True)
class KeyShown:
    """A new symmetric-key enrollment with its key (group or per-device): shown once, never
    stored clear.
    The caller zeroes `key` when it has shown it."""

    enrollment: Enrollment
    key: bytearray = field(repr=False)


@dataclass(frozen=True, slots=True)
class Registration:
    physical_id: PhysicalId
    enrollment_id: str
    status: RegistrationStatus
    logical_name: LogicalName | None
    requested_at: datetime
    updated_at: datetime
    serial: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "physical_id": self.physical_id,
            "enrollment_id": self.enrollment_id,
            "status": self.status.value,
            "logical_name": self.logical_name,
            "requested_at": self.requested_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "serial": self.serial,
        }


@dataclass(frozen=True, slots=True)
class DataPlane:
    """Where a provisioned device connects (from settings) and the topics it may use."""

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 8883
    topic_root: str = "devices"

    def topics(self, physical_id: str) -> dict[str, str]:
        base = f"{self.topic_root}/{physical_id}"
        return {
            "diagnostics": f"{base}/diagnostics",
            "telemetry": f"{base}/telemetry",
            "feedback": f"{base}/feedback",
        }


@dataclass(frozen=True, slots=True)
class ProvisioningResult:
    """What a device receives: `status` assigned (with credentials) or pending."""

    physical_id: PhysicalId
    status: RegistrationStatus
    logical_name: LogicalName | None = None
    certificate_pem: str | None = None
    chain_pem: str | None = None
    serial: str | None = None
    not_after: datetime | None = None
    mqtt_host: str | None = None
    mqtt_port: int | None = None
    topics: Mapping[str, str] = field(default_factory=dict)
    policy: Mapping[str, Any] = field(default_factory=dict)
    retry_after: int | None = None  # seconds, when pending

"""Wire schemas of the CA routes: what a request may contain (`*In`) and what a response shows
(`*Out`).

Inputs refuse unknown fields and bound every string and list; the CA service still judges
meaning (the CSR, names, lifetimes, reasons). Outputs are read from the service's records by
attribute. No output has a field for private key material: the one secret a request may
carry, the password of an imported CA key, is a `SecretStr` that is never echoed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from cryptography import x509
from pydantic import (
    AliasChoices,
    AliasPath,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
)

from devicetrust.api.instants import Instant
from devicetrust.pki import CaRole, CaStatus, Profile, serial_text
from devicetrust.pki.keys import KeyAlgorithm

MAX_PEM = 64 * 1024  # a CSR or one certificate; the CA service refuses CSRs over 64 KiB too
MAX_CHAIN = 256 * 1024

Pem = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PEM)]
Ident = Annotated[str, StringConstraints(min_length=1, max_length=64)]
HostName = Annotated[str, StringConstraints(min_length=1, max_length=253)]
IpText = Annotated[str, StringConstraints(min_length=1, max_length=45)]
Reason = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    Field(description="RFC 5280 §5.3.1 reason, as openssl names it (e.g. `keyCompromise`)"),
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)

    @classmethod
    def of(cls, record: object) -> Self:
        return cls.model_validate(record)


# ---- requests -----------------------------------------------------------------------------


class InitIn(_In):
    algorithm: KeyAlgorithm | None = Field(
        default=None, description="CA key algorithm; default: the server's `pki.algorithm`"
    )


class RotateIn(_In):
    role: CaRole = Field(default=CaRole.ISSUING, description="issuing or manufacturing")
    algorithm: KeyAlgorithm | None = Field(
        default=None, description="default: the algorithm of the CA being replaced"
    )


class ImportIn(_In):
    """A company CA: its certificate, and its key as an encrypted PKCS#8 PEM with the
    password, or as a `key_uri` (`pkcs11:` or a devicetrust `file:` key)."""

    certificate_pem: Pem
    role: CaRole
    key_pem: Pem | None = None
    key_password: Annotated[SecretStr, Field(min_length=1, max_length=1024)] | None = None
    key_uri: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None
    chain_pem: Annotated[str, StringConstraints(min_length=1, max_length=MAX_CHAIN)] | None = None


class IssueIn(_In):
    csr: Pem = Field(description="PKCS#10 certificate signing request, PEM")
    physical_id: Ident | None = Field(
        default=None, description="the unit (device and birth profiles)"
    )
    profile: Profile = Profile.DEVICE
    dns_names: list[HostName] = Field(default_factory=list, max_length=100)
    ip_addresses: list[IpText] = Field(default_factory=list, max_length=100)
    lifetime_hours: float | None = Field(
        default=None, gt=0, le=24 * 365 * 30, description="default: the profile's lifetime"
    )


class RevokeIn(_In):
    reason: Reason = "unspecified"
    invalidity_date: Instant | None = Field(
        default=None, description="when the key is known or suspected compromised (past)"
    )


class RevokeAllIn(_In):
    reason: Reason


# ---- responses ----------------------------------------------------------------------------


class CaOut(_Out):
    ca_id: str
    role: CaRole
    status: CaStatus
    subject: str
    algorithm: KeyAlgorithm
    key_uri: str
    parent_id: str | None
    external: bool
    not_before: datetime = Field(validation_alias=AliasPath("certificate", "not_valid_before_utc"))
    not_after: datetime
    created_at: datetime
    retired_at: datetime | None
    pem: str


class CaList(_Out):
    items: list[CaOut]


def _reason_name(value: object) -> object:
    return value.value if isinstance(value, x509.ReasonFlags) else value


class CertificateOut(_Out):
    serial: str = Field(
        validation_alias=AliasChoices("serial_hex", "serial"),
        description="upper-case hex, as `openssl x509 -serial` prints it",
    )
    issuer_ca_id: str
    profile: Profile
    physical_id: str | None
    logical_name: str | None
    subject: str
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str
    spki_sha256: str
    issued_at: datetime
    issued_by: str
    revoked_at: datetime | None
    revocation_reason: str | None
    renewed_from: str | None

    @field_validator("revocation_reason", mode="before")
    @classmethod
    def _reason(cls, value: object) -> object:
        return _reason_name(value)

    @field_validator("renewed_from", mode="before")
    @classmethod
    def _serial_text(cls, value: object) -> object:
        return serial_text(value) if isinstance(value, int) else value


class CertificateDetailOut(CertificateOut):
    pem: str = Field(description="the certificate alone, PEM")


class CertificatePage(_Out):
    items: list[CertificateOut]
    limit: int
    offset: int


class CertificateList(_Out):
    items: list[CertificateOut]


class HierarchyOut(_Out):
    root: CaOut
    issuing: CaOut
    manufacturing: CaOut
    ocsp_signers: list[CertificateOut]

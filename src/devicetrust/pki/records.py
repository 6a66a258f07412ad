"""Read-only views of what the CA records (CAs, issued certificates, CRLs), the enums that
name them, and what a caller asks the CA for (`IssueRequest`). Plain values: building one
never touches the database or a key, and none of them ever holds private key material.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from devicetrust.domain.ids import LogicalName, PhysicalId
from devicetrust.pki.csr import VerifiedCsr
from devicetrust.pki.errors import InvalidReason
from devicetrust.pki.keys import KeyAlgorithm
from devicetrust.pki.serials import Serial, serial_text


class CaRole(enum.StrEnum):
    ROOT = "root"  # self-signed (or an imported company CA); signs only CA certificates
    ISSUING = "issuing"  # operational device, server and OCSP-signer certificates
    MANUFACTURING = "manufacturing"  # factory birth certificates


class CaStatus(enum.StrEnum):
    ACTIVE = "active"  # issues new certificates
    RETIRED = "retired"  # issues nothing, still signs CRLs for what it issued


class Profile(enum.StrEnum):
    DEVICE = "device"  # operational: clientAuth, short-lived, names from the registry
    BIRTH = "birth"  # manufacturing CA, long-lived, physical identity only
    SERVER = "server"  # serverAuth, DNS/IP names given by the operator
    OCSP_SIGNER = "ocsp-signer"  # delegated OCSP responder (RFC 6960 §4.2.2.2)
    CA = "ca"  # an intermediate CA certified by the root (never from a CSR)


class KeyReuse(enum.StrEnum):
    """Whether a unit may present a public key it already has a certificate for."""

    ALLOW = "allow"
    REQUIRE_NEW = "require-new"


@dataclass(frozen=True, slots=True)
class IssueRequest:
    """One certificate to issue from a CSR, as `PkiService.issue_batch` takes it: the
    arguments of `issue_from_csr`, with the same meaning and defaults."""

    csr: bytes | str | VerifiedCsr  # a `VerifiedCsr`: the caller ran `verify_csr` on it
    physical_id: str | None = None
    profile: Profile | str = Profile.DEVICE
    dns_names: Sequence[str] = ()
    ip_addresses: Sequence[str] = ()
    lifetime: timedelta | None = None
    key_reuse: KeyReuse = KeyReuse.ALLOW
    ca_role: CaRole | None = None


def parse_reason(value: str | x509.ReasonFlags) -> x509.ReasonFlags:
    """An RFC 5280 §5.3.1 reason by its ASN.1 name (`keyCompromise`, any case, `-`/`_`
    ignored). `removeFromCRL` is refused: it only exists in delta CRLs."""
    if isinstance(value, x509.ReasonFlags):
        flag = value
    else:
        wanted = str(value).replace("-", "").replace("_", "").lower()
        matches = [f for f in x509.ReasonFlags if f.value.lower() == wanted]
        if not matches:
            known = ", ".join(f.value for f in x509.ReasonFlags if f is not _REMOVE)
            raise InvalidReason(
                f"unknown revocation reason {str(value)[:40]!r}; known: {known}",
                reason=str(value)[:40],
            )
        flag = matches[0]
    if flag is _REMOVE:
        raise InvalidReason("removeFromCRL is not a revocation reason (delta CRLs only)")
    return flag


_REMOVE = x509.ReasonFlags.remove_from_crl


def _pem(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode("ascii")


@dataclass(frozen=True, slots=True)
class CaRecord:
    ca_id: str
    role: CaRole
    status: CaStatus
    subject: str
    algorithm: KeyAlgorithm
    key_uri: str
    certificate: x509.Certificate
    parent_id: str | None
    external: bool
    created_at: datetime
    retired_at: datetime | None = None

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(Encoding.DER)

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(Encoding.PEM).decode("ascii")

    def to_json(self) -> dict[str, Any]:
        return {
            "ca_id": self.ca_id,
            "role": self.role.value,
            "status": self.status.value,
            "subject": self.subject,
            "algorithm": self.algorithm.value,
            "key_uri": self.key_uri,
            "parent_id": self.parent_id,
            "external": self.external,
            "not_before": self.certificate.not_valid_before_utc.isoformat(),
            "not_after": self.not_after.isoformat(),
            "created_at": self.created_at.isoformat(),
            "retired_at": self.retired_at.isoformat() if self.retired_at else None,
        }


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    serial: Serial
    issuer_ca_id: str
    profile: Profile
    physical_id: PhysicalId | None
    logical_name: LogicalName | None
    subject: str
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str
    spki_sha256: str
    der: bytes
    issued_at: datetime
    issued_by: str
    revoked_at: datetime | None = None
    revocation_reason: x509.ReasonFlags | None = None
    renewed_from: Serial | None = None

    @property
    def serial_hex(self) -> str:
        """As `openssl x509 -serial` prints it."""
        return serial_text(self.serial)

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.der)

    @property
    def pem(self) -> str:
        return _pem(self.der)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def valid_at(self, at: datetime) -> bool:
        """Within its validity period and not revoked (nor on hold)."""
        return self.revoked_at is None and self.not_before <= at < self.not_after

    def to_json(self) -> dict[str, Any]:
        return {
            "serial": self.serial_hex,
            "issuer_ca_id": self.issuer_ca_id,
            "profile": self.profile.value,
            "physical_id": self.physical_id,
            "logical_name": self.logical_name,
            "subject": self.subject,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "fingerprint_sha256": self.fingerprint_sha256,
            "spki_sha256": self.spki_sha256,
            "issued_at": self.issued_at.isoformat(),
            "issued_by": self.issued_by,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revocation_reason": (self.revocation_reason.value if self.revocation_reason else None),
            "renewed_from": serial_text(self.renewed_from) if self.renewed_from else None,
        }


@dataclass(frozen=True, slots=True)
class Hierarchy:
    """What `init_hierarchy` created."""

    root: CaRecord
    issuing: CaRecord
    manufacturing: CaRecord
    ocsp_signers: tuple[IssuedCertificate, ...]


@dataclass(frozen=True, slots=True)
class CrlRecord:
    ca_id: str
    number: int
    this_update: datetime
    next_update: datetime
    entries: int
    der: bytes

    @property
    def pem(self) -> str:
        return x509.load_der_x509_crl(self.der).public_bytes(Encoding.PEM).decode("ascii")


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """What `refresh_due` did: CRLs re-signed, OCSP signers renewed, and the CAs it could not
    serve now (with the error code, e.g. an offline root key)."""

    crls: tuple[str, ...] = ()
    ocsp_signers: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class OcspSigner:
    """A delegated OCSP responder for one CA (RFC 6960 §4.2.2.2): its certificate, the
    certificate of the CA it answers for, and the key URI to open with the keyring."""

    ca_id: str
    issuer: x509.Certificate
    certificate: x509.Certificate
    key_uri: str

"""Certificate status as the CA records it: the contract between the CA's store (which
knows) and the OCSP responder and the chain verifier (which ask).

Never guesses: a serial the CA did not issue is UNKNOWN, not GOOD.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cryptography import x509


class CertStatus(enum.StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class StatusInfo:
    serial: int
    status: CertStatus
    revoked_at: datetime | None = None
    reason: x509.ReasonFlags | None = None


class StatusSource(Protocol):
    def status_of(self, issuer: x509.Certificate, serial: int) -> StatusInfo:
        """Status of the certificate `serial` issued by `issuer` (UNKNOWN if not ours)."""
        ...

"""Values of measured-boot attestation: golden measurements and the verdicts on quotes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devicetrust.attestation.rules import BootVerdict, Pcrs, pcrs_json


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


@dataclass(frozen=True, slots=True)
class GoldenMeasurement:
    """Known-good SHA-256 PCR values of a boot chain, by name."""

    name: str
    pcrs: Pcrs
    note: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pcrs": pcrs_json(self.pcrs),
            "note": self.note,
            "active": self.active,
            "created_at": _iso(self.created_at),
            "created_by": self.created_by,
            "revoked_at": _iso(self.revoked_at),
            "revoked_by": self.revoked_by,
            "revoke_reason": self.revoke_reason,
        }


@dataclass(frozen=True, slots=True)
class BootAttestation:
    """One verified TPM quote of a unit: the PCR values it proved and the verdict."""

    attestation_id: str
    physical_id: str
    attested_at: datetime
    pcrs: Pcrs
    verdict: BootVerdict
    golden: str | None
    detail: str

    @property
    def ok(self) -> bool:
        return self.verdict is BootVerdict.MATCHED

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.attestation_id,
            "physical_id": self.physical_id,
            "attested_at": _iso(self.attested_at),
            "verdict": self.verdict.value,
            "golden": self.golden,
            "detail": self.detail,
            "pcrs": pcrs_json(self.pcrs),
        }

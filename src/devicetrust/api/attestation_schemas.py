"""Wire schemas of the measured-boot routes (`api.routers.attestation`): operator requests
(`*In`) and the views of golden measurements and boot attestations (`*Out`).

Inputs refuse unknown fields and bound every string and map; the attestation service judges
meaning (PCR indices 0-23, 64 hex digits per SHA-256 value, names, reasons) and answers
`attestation.*` problems. Outputs hold no secret: PCR values are measurements, not keys.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from devicetrust.attestation import BootAttestation, BootVerdict, GoldenMeasurement
from devicetrust.attestation.rules import MAX_NAME, PCR_COUNT, pcrs_json

MAX_TEXT = 500
PcrIndex = Annotated[str, StringConstraints(min_length=1, max_length=2)]
PcrHex = Annotated[str, StringConstraints(min_length=1, max_length=66)]
PcrMap = Annotated[dict[PcrIndex, PcrHex], Field(min_length=1, max_length=PCR_COUNT)]
_PCRS_EXAMPLE = {
    "0": "3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969",
    "7": "b2a83b0ebf2f8374299a5b2bdfc31ea955ad7236946bb9b2f6d8a4c8fc0ea2c0",
}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GoldenIn(_In):
    """A new golden measurement: its PCR values, or those a reference unit last proved."""

    name: str = Field(
        min_length=1, max_length=MAX_NAME, examples=["arm-fw-2.4.1"], description="never reused"
    )
    pcrs: PcrMap | None = Field(
        default=None,
        description="SHA-256 PCR index -> 64 hex digits; exactly one of pcrs and from_unit",
        examples=[_PCRS_EXAMPLE],
    )
    from_unit: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="physical id of a reference unit: its latest verified boot quote",
        examples=["c2c38155-b0d2-48b6-82fd-22fe3b316224"],
    )
    note: str = Field(default="", max_length=MAX_TEXT, examples=["firmware 2.4.1, line 3"])

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.pcrs is None) == (self.from_unit is None):
            raise ValueError("give exactly one of pcrs and from_unit")
        return self


class GoldenRevokeIn(_In):
    reason: str = Field(
        default="",
        max_length=MAX_TEXT + 500,
        description="why it is no longer accepted; required (1-500 characters)",
        examples=["firmware 2.4.1 withdrawn: CVE in the boot loader"],
    )


class GoldenOut(BaseModel):
    name: str
    pcrs: dict[str, str] = Field(description="SHA-256 PCR index -> hex value")
    note: str
    active: bool
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None

    @classmethod
    def of(cls, golden: GoldenMeasurement) -> Self:
        return cls(
            name=golden.name,
            pcrs=pcrs_json(golden.pcrs),
            note=golden.note,
            active=golden.active,
            created_at=golden.created_at,
            created_by=golden.created_by,
            revoked_at=golden.revoked_at,
            revoked_by=golden.revoked_by,
            revoke_reason=golden.revoke_reason,
        )


class GoldenList(BaseModel):
    items: list[GoldenOut]


class BootAttestationOut(BaseModel):
    id: str
    physical_id: str
    attested_at: datetime
    verdict: BootVerdict
    golden: str | None = Field(description="the golden measurement matched; null: none")
    detail: str
    pcrs: dict[str, str] = Field(description="the SHA-256 PCR values the quote proved")

    @classmethod
    def of(cls, attestation: BootAttestation) -> Self:
        return cls(
            id=attestation.attestation_id,
            physical_id=attestation.physical_id,
            attested_at=attestation.attested_at,
            verdict=attestation.verdict,
            golden=attestation.golden,
            detail=attestation.detail,
            pcrs=pcrs_json(attestation.pcrs),
        )


class BootAttestationList(BaseModel):
    physical_id: str
    items: list[BootAttestationOut] = Field(description="newest first")


class BootChallengeOut(BaseModel):
    """What the device's TPM quotes: these PCRs, with this nonce as qualifying data."""

    challenge_id: str
    nonce: str = Field(description="base64; the quote's qualifying data")
    quote_pcrs: str = Field(description="SHA-256 PCR indices, comma-separated", examples=["0,7"])
    expires_at: datetime


_B64 = 4096  # base64 characters; a quote and its signature are a few hundred bytes


class BootQuoteIn(_In):
    """The AK's TPM2_Quote of `quote_pcrs` with the challenge's nonce."""

    challenge_id: str = Field(min_length=1, max_length=64)
    ak_public: str = Field(min_length=1, max_length=_B64, description="TPM2B_PUBLIC, base64")
    quote_info: str = Field(min_length=1, max_length=_B64, description="TPMS_ATTEST, base64")
    quote_signature: str = Field(
        min_length=1, max_length=_B64, description="TPMT_SIGNATURE, base64"
    )
    pcr_values: dict[str, str] = Field(
        max_length=24, description="SHA-256 PCR index -> hex, the values the quote covers"
    )

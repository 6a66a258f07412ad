"""Tables of measured-boot attestation (`devicetrust.attestation`; migration 0008). Imported
by `store.models` so that `Base.metadata` is complete.

`golden_measurements`: the PCR values (SHA-256 bank, hex per index, JSON) a known-good boot
chain produces, by name (e.g. `arm-fw-2.4.1`); revoked, never deleted, so old verdicts keep
their meaning. `boot_attestations`: every verified TPM quote, one row each, with the PCR values
it proved, the golden measurement it matched (NULL: none) and why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from devicetrust.store.models import Base, _BigIntId

__all__ = ["Base", "BootAttestationRow", "GoldenMeasurementRow"]


class GoldenMeasurementRow(Base):
    __tablename__ = "golden_measurements"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    pcrs: Mapped[dict[str, Any]]  # {"0": "<64 hex>", ...}
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    revoke_reason: Mapped[str | None] = mapped_column(Text)


class BootAttestationRow(Base):
    __tablename__ = "boot_attestations"
    __table_args__ = (Index("ix_boot_attestations_unit_seq", "physical_id", "seq"),)

    # insertion order: "latest" needs no tie-break between quotes of the same instant
    seq: Mapped[int] = mapped_column(_BigIntId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    physical_id: Mapped[str] = mapped_column(String(36), ForeignKey("physical_identities.id"))
    attested_at: Mapped[datetime]
    pcrs: Mapped[dict[str, Any]]
    golden: Mapped[str | None] = mapped_column(String(128))
    verdict: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="")
    # TPM2B_PUBLIC of the attestation key that signed the quote: bound to the unit's EK by
    # credential activation at provisioning; later quotes must come from the same AK
    ak_public: Mapped[bytes | None] = mapped_column(LargeBinary)

"""Measured-boot facts for the posture report: each unit's latest verified TPM quote, judged
again against the golden measurements active now (a golden measurement revoked since the
quote no longer vouches for it). Read-only, two bulk queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from devicetrust.attestation import judge, parse_pcrs
from devicetrust.store.models_attestation import BootAttestationRow, GoldenMeasurementRow


@dataclass(frozen=True, slots=True)
class BootFacts:
    attested_at: datetime
    matches_now: bool
    detail: str  # the judgement against today's golden measurements


def latest_boots(session: Session, ids: list[str] | None) -> dict[str, BootFacts]:
    """Units (all when `ids` is None) with at least one boot attestation."""
    t = BootAttestationRow
    newest = select(func.max(t.seq).label("seq")).group_by(t.physical_id)
    if ids is not None:
        newest = newest.where(t.physical_id.in_(ids))
    last = newest.subquery()
    rows = session.execute(
        select(t.physical_id, t.attested_at, t.pcrs).join(last, t.seq == last.c.seq)
    )
    goldens = {
        g.name: parse_pcrs(g.pcrs)
        for g in session.scalars(
            select(GoldenMeasurementRow).where(GoldenMeasurementRow.revoked_at.is_(None))
        )
    }
    out: dict[str, BootFacts] = {}
    for pid, at, pcrs in rows:
        judgement = judge(parse_pcrs(pcrs), goldens)
        out[pid] = BootFacts(at, judgement.ok, judgement.detail)
    return out

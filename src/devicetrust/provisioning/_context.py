"""The read-only `AttestationContext` a method decides with, over one read session."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from devicetrust.domain.ids import PhysicalId
from devicetrust.provisioning.methods import StoredChallenge
from devicetrust.provisioning.records import AttestationKind
from devicetrust.store.models import ProvisioningChallengeRow, ProvisioningNonceRow


class SessionContext:
    def __init__(self, session: Session, now: datetime) -> None:
        self._session = session
        self._now = now

    def now(self) -> datetime:
        return self._now

    def challenge(self, challenge_id: str) -> StoredChallenge | None:
        row = self._session.get(ProvisioningChallengeRow, challenge_id)
        if row is None:
            return None
        try:
            method = AttestationKind(row.method)
        except ValueError:
            return None
        return StoredChallenge(
            challenge_id=row.id,
            physical_id=PhysicalId(row.physical_id),
            method=method,
            expected=row.expected,
            expires_at=row.expires_at,
            used=row.used_at is not None,
        )

    def nonce_used(self, nonce: str) -> bool:
        found = self._session.execute(
            select(ProvisioningNonceRow.nonce).where(ProvisioningNonceRow.nonce == nonce)
        ).first()
        return found is not None

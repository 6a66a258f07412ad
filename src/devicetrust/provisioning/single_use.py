"""Single-use values: burning a token nonce or a challenge at the moment a provisioning
commits to it, and purging them once expired.

A nonce is recorded under its primary key (a replay cannot insert it twice: the loser of a
race gets `provisioning.token_replayed`); a challenge is marked used only if it was unused.
Never decides whether evidence is valid (the methods do) and never stores a secret.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import Conflict
from devicetrust.provisioning.allocation import Action
from devicetrust.provisioning.assignment import Plan
from devicetrust.provisioning.errors import AttestationFailed, RefusalReason
from devicetrust.provisioning.methods import RegistrationRequest
from devicetrust.store.database import Database
from devicetrust.store.models import ProvisioningChallengeRow, ProvisioningNonceRow

Queue = Callable[[Session, Plan, RegistrationRequest, datetime], None]


class SingleUseOps:
    _db: Database
    _clock: Clock

    def _burn(self, plan: Plan, request: RegistrationRequest, queue: Queue) -> None:
        """Spend the single-use value; for a pending unit, `queue` records it in the pending
        queue in the same transaction."""
        now = self._clock.now()
        single = plan.authorization.single_use
        try:
            with self._db.transaction() as session:
                if single is not None and single.kind == "nonce":
                    session.add(
                        ProvisioningNonceRow(
                            nonce=single.value,
                            physical_id=plan.physical_id,
                            used_at=now,
                            expires_at=single.expires_at,
                        )
                    )
                    session.flush()
                elif single is not None:
                    spent = session.execute(
                        update(ProvisioningChallengeRow)
                        .where(
                            ProvisioningChallengeRow.id == single.value,
                            ProvisioningChallengeRow.used_at.is_(None),
                        )
                        .values(used_at=now)
                    )
                    if spent.rowcount != 1:  # type: ignore[attr-defined]
                        raise AttestationFailed(
                            RefusalReason.CHALLENGE_INVALID, "the challenge was already used"
                        )
                if plan.decision.action is Action.PENDING:
                    queue(session, plan, request, now)
        except Conflict as exc:
            if exc.code != "store.constraint_violated":
                raise
            raise AttestationFailed(
                RefusalReason.TOKEN_REPLAYED, "the token was already used"
            ) from exc

    def purge_expired(self) -> int:
        """Periodic upkeep: drop challenges and token nonces past their expiry (a nonce
        is kept exactly as long as a token carrying it could still be accepted)."""
        now = self._clock.now()
        with self._db.transaction() as session:
            gone = session.execute(
                delete(ProvisioningChallengeRow).where(ProvisioningChallengeRow.expires_at < now)
            ).rowcount  # type: ignore[attr-defined]
            gone += session.execute(
                delete(ProvisioningNonceRow).where(ProvisioningNonceRow.expires_at < now)
            ).rowcount  # type: ignore[attr-defined]
        return int(gone)

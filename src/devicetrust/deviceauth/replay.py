"""Single-use token ids (HMAC nonces, JWT `jti`): spent at the moment a token is accepted,
remembered exactly as long as a token carrying them could still be accepted, then purged.

A token id is recorded under its primary key (unit, method, id), so a replay cannot insert it
twice, even two requests racing on two servers: the loser gets `auth.token_replayed`. Never
stores a token, only the id the device chose.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete

from devicetrust.deviceauth.errors import TokenReplayed
from devicetrust.deviceauth.records import AuthMethod
from devicetrust.domain.errors import Conflict
from devicetrust.store.database import Database
from devicetrust.store.models_device_auth import DeviceTokenUseRow


class ReplayLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    def spend(
        self, physical_id: str, method: AuthMethod, token_id: str, *, at: datetime, until: datetime
    ) -> None:
        """Record the token id as used, or refuse it if it already was."""
        try:
            with self._db.transaction() as session:
                session.add(
                    DeviceTokenUseRow(
                        physical_id=physical_id,
                        method=method.value,
                        token_id=token_id,
                        used_at=at,
                        expires_at=until,
                    )
                )
                session.flush()
        except Conflict as exc:
            if exc.code != "store.constraint_violated":
                raise
            raise TokenReplayed(
                "the token was already used", method=method.value, token_id=token_id[:64]
            ) from exc

    def purge(self, now: datetime) -> int:
        """Drop token ids whose tokens can no longer be accepted."""
        with self._db.transaction() as session:
            gone = session.execute(
                delete(DeviceTokenUseRow).where(DeviceTokenUseRow.expires_at < now)
            ).rowcount  # type: ignore[attr-defined]
        return int(gone)

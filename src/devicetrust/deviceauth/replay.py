"""Single-use token ids (HMAC nonces, JWT `jti`): spent at the moment a token is accepted,
remembered exactly as long as a token carrying them could still be accepted, then purged.

A token id is recorded under its primary key (unit, method, id), so a replay cannot insert it
twice, even two requests racing on two servers: the loser gets `auth.token_replayed`.
Concurrent spends are written together (`_group_commit`: one multi-row
`INSERT ... ON CONFLICT DO NOTHING RETURNING` per batch); `group_commit=False` writes one
transaction per token. `check_unspent` only reads (a dry run). Never stores a token, only the
id the device chose.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from devicetrust.deviceauth._group_commit import GroupCommit, TokenUse
from devicetrust.deviceauth.errors import TokenReplayed
from devicetrust.deviceauth.records import AuthMethod
from devicetrust.domain.errors import Conflict
from devicetrust.store.database import Database
from devicetrust.store.models_device_auth import DeviceTokenUseRow


class ReplayLedger:
    def __init__(self, db: Database, *, group_commit: bool = True) -> None:
        self._db = db
        self._batch = GroupCommit(db) if group_commit else None

    def spend(
        self, physical_id: str, method: AuthMethod, token_id: str, *, at: datetime, until: datetime
    ) -> None:
        """Record the token id as used, or refuse it if it already was."""
        if self._batch is not None:
            use = TokenUse(physical_id, method.value, token_id, at, until)
            if not self._batch.spend(use):
                raise _replayed(method, token_id)
            return
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
            raise _replayed(method, token_id) from exc

    def check_unspent(self, physical_id: str, method: AuthMethod, token_id: str) -> None:
        """Refuse a token id already spent, recording nothing (`--dry-run` verification)."""
        t = DeviceTokenUseRow
        with self._db.read() as session:
            found = session.execute(
                select(t.token_id).where(
                    t.physical_id == physical_id, t.method == method.value, t.token_id == token_id
                )
            ).first()
        if found is not None:
            raise _replayed(method, token_id)

    def purge(self, now: datetime) -> int:
        """Drop token ids whose tokens can no longer be accepted."""
        with self._db.transaction() as session:
            gone = session.execute(
                delete(DeviceTokenUseRow).where(DeviceTokenUseRow.expires_at < now)
            ).rowcount  # type: ignore[attr-defined]
        return int(gone)


def _replayed(method: AuthMethod, token_id: str) -> TokenReplayed:
    return TokenReplayed("the token was already used", method=method.value, token_id=token_id[:64])

"""Group commit of spent token ids (`deviceauth._group_commit`), on SQLite and PostgreSQL:
100 threads racing with duplicates among them -- over one batcher and over two batchers on
two `Database` objects, as two servers would -- and each id is won by exactly one caller,
whatever the batch sizes; the ledger holds each id once. A failed write reaches every caller
of its batch and the batcher goes on working."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from devicetrust.deviceauth import AuthMethod, TokenReplayed
from devicetrust.deviceauth._group_commit import GroupCommit, TokenUse
from devicetrust.deviceauth.replay import ReplayLedger
from devicetrust.domain.errors import Conflict
from devicetrust.store.database import Database
from devicetrust.store.models_device_auth import DeviceTokenUseRow

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PID = str(uuid.UUID(int=7, version=4))


def _use(token_id: str, *, pid: str = PID) -> TokenUse:
    return TokenUse(pid, "jwt", token_id, NOW, NOW + timedelta(minutes=5))


def _rows(db: Database) -> int:
    with db.read() as session:
        return int(session.execute(select(func.count()).select_from(DeviceTokenUseRow)).scalar())


def _race(batchers: list[GroupCommit], token_ids: list[str]) -> list[tuple[str, bool]]:
    """Every id spent by its own thread, all released at once, alternating batchers."""
    start = threading.Barrier(len(token_ids))

    def spend(index: int) -> tuple[str, bool]:
        start.wait()
        token_id = token_ids[index]
        return token_id, batchers[index % len(batchers)].spend(_use(token_id))

    with ThreadPoolExecutor(len(token_ids)) as pool:
        return list(pool.map(spend, range(len(token_ids))))


@pytest.mark.parametrize("max_batch", [1, 7, 500])
def test_one_winner_per_id_among_100_threads(db: Database, max_batch: int) -> None:
    distinct = [f"jti-{n:03d}-{uuid.uuid4().hex[:8]}" for n in range(40)]
    token_ids = [distinct[n % 40] for n in range(100)]  # each id 2 or 3 times

    outcomes = _race([GroupCommit(db, max_batch=max_batch)], token_ids)

    wins = Counter(token_id for token_id, new in outcomes if new)
    assert wins == Counter(distinct)  # exactly one winner per id, every id won
    assert _rows(db) == 40


def test_two_servers_share_the_decision(db: Database) -> None:
    other = Database(db.url)
    try:
        distinct = [f"jti-{n:03d}-{uuid.uuid4().hex[:8]}" for n in range(50)]
        token_ids = [distinct[n % 50] for n in range(100)]  # each id once on each server

        servers = [GroupCommit(db), GroupCommit(other, max_wait=timedelta(milliseconds=1))]
        outcomes = _race(servers, token_ids)
    finally:
        other.dispose()

    assert Counter(token_id for token_id, new in outcomes if new) == Counter(distinct)
    assert _rows(db) == 50


def test_an_id_spent_in_an_earlier_batch_is_not_new(db: Database) -> None:
    batcher = GroupCommit(db)
    assert batcher.spend(_use("jti-once-000")) is True
    assert batcher.spend(_use("jti-once-000")) is False
    assert batcher.spend(_use("jti-once-000", pid=str(uuid.uuid4()))) is True  # another unit


def test_a_failed_write_reaches_its_caller_and_the_batcher_recovers(db: Database) -> None:
    batcher = GroupCommit(db)
    broken = TokenUse(PID, "jwt", "jti-broken-00", None, NOW)  # type: ignore[arg-type]
    with pytest.raises(Conflict) as failed:  # the NOT NULL violation, as the store reports it
        batcher.spend(broken)
    assert failed.value.code == "store.constraint_violated"
    assert batcher.spend(_use("jti-after-000")) is True
    assert _rows(db) == 1


def test_the_ledger_refuses_a_replay_with_and_without_group_commit(db: Database) -> None:
    for group_commit in (True, False):
        ledger = ReplayLedger(db, group_commit=group_commit)
        jti = f"jti-ledger-{group_commit}"
        until = NOW + timedelta(minutes=5)
        ledger.check_unspent(PID, AuthMethod.JWT, jti)
        ledger.spend(PID, AuthMethod.JWT, jti, at=NOW, until=until)
        with pytest.raises(TokenReplayed):
            ledger.spend(PID, AuthMethod.JWT, jti, at=NOW, until=until)
        with pytest.raises(TokenReplayed):
            ledger.check_unspent(PID, AuthMethod.JWT, jti)

"""A pool's first free names, read from where the last read found them, and the claim of one
of them inside the provisioning's transaction.

Reading: the pool's names are read window by window (`POOL_WINDOW` names in one indexed
lookup). Where the first free name was found is remembered per pool in this process
(`PoolHints`), with the registry's release count read in the same statement (the
`logical_name_releases` row, raised in the transaction of every change that may free a held
name: unbind, decommissioning, rename) and the earliest end of grace of a renamed identity's
former name it passed. The next read of the pool starts there while the count is the same and
no such grace has ended, and at the pool's first name otherwise: a hint is a lower bound
(every name below it was taken under that count), so the first free name is never skipped,
and a pool costs one lookup per provisioning however full it is. Another process's
allocations only take names, so its hints stay true.

Claiming: concurrent provisionings of one pool read the same first free names. Inside the
transaction each claims, in one statement, the first of its candidates that is still free
and that no provisioning in flight has claimed (PostgreSQL: a transaction-level advisory lock
taken without waiting, on the key `Database.try_claim` uses); the others take the next ones
instead of all racing for the same name. SQLite serialises writers: there the first
candidate is taken, and the binding's checks catch a name taken since it was read.

Never counts as free a name that another unit holds or that still resolves to a renamed
identity; never waits for another provisioning's claim.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CompoundSelect,
    Select,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from devicetrust.domain.ids import LogicalName, PhysicalId
from devicetrust.provisioning.allocation import PoolPattern
from devicetrust.store.models import (
    BindingRow,
    LogicalIdentityRow,
    NameReleasesRow,
    RetiredNameRow,
)
from devicetrust.store.types import UTCDateTime

POOL_WINDOW = 64


@dataclass(frozen=True, slots=True)
class PoolHint:
    """Every name of the pool numbered below `number` was taken when the registry's release
    count was `releases`, and stays so until `valid_until` (a former name's end of grace)."""

    number: int
    releases: int
    valid_until: datetime | None = None

    def holds(self, releases: int, now: datetime) -> bool:
        return releases == self.releases and (self.valid_until is None or now < self.valid_until)


class PoolHints:
    """The `PoolHint` of each pool (enrollment id and pattern) this process read."""

    def __init__(self) -> None:
        self._hints: dict[tuple[str, str], PoolHint] = {}
        self._lock = threading.Lock()

    def get(self, pool: tuple[str, str]) -> PoolHint | None:
        return self._hints.get(pool)

    def put(self, pool: tuple[str, str], hint: PoolHint, *, restarted: bool) -> None:
        """Keep `hint`: always after a read from the pool's first name (the older hint no
        longer held), otherwise only when it is further than the one kept."""
        with self._lock:
            kept = self._hints.get(pool)
            if (
                restarted
                or kept is None
                or (hint.releases, hint.number)
                > (
                    kept.releases,
                    kept.number,
                )
            ):
                self._hints[pool] = hint


@dataclass(frozen=True, slots=True)
class PoolRead:
    """The pool from `first` on: the names read that were taken, and the free ones of the
    last window read, in order (empty: every name from `first` on is taken)."""

    first: int
    taken: frozenset[str]
    free: tuple[LogicalName, ...]


def _window_statement(postgres: bool) -> CompoundSelect[Any]:
    """Built once per dialect: of a window of names, those another unit holds (no end of
    grace) and those still resolving to a renamed identity (with the end of their grace),
    and the registry's release count, all in one snapshot. On PostgreSQL the names travel as
    one array parameter, so the statement text does not depend on their number."""
    names: Any = bindparam("names", type_=ARRAY(String)) if postgres else None

    def among(column: Any) -> Any:
        if postgres:
            return column == any_(names)
        return column.in_(bindparam("names", expanding=True))

    no_time = cast(null(), UTCDateTime())
    held = (
        select(LogicalIdentityRow.name, no_time, cast(null(), BigInteger))
        .join(BindingRow, BindingRow.logical_id == LogicalIdentityRow.id)
        .where(
            BindingRow.ended_at.is_(None),
            BindingRow.physical_id != bindparam("physical_id"),
            among(LogicalIdentityRow.name),
        )
    )
    retired = select(
        RetiredNameRow.name, RetiredNameRow.resolvable_until, cast(null(), BigInteger)
    ).where(RetiredNameRow.resolvable_until > bindparam("now"), among(RetiredNameRow.name))
    releases = select(cast(null(), String), no_time, NameReleasesRow.count).where(
        NameReleasesRow.id == 1
    )
    return union_all(held, retired, releases)


_WINDOW = {postgres: _window_statement(postgres) for postgres in (False, True)}


def _window(
    session: Session, physical_id: PhysicalId, now: datetime, names: Sequence[str]
) -> tuple[dict[str, datetime | None], int]:
    """(taken name -> end of its grace, None when held; the release count)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    taken: dict[str, datetime | None] = {}
    releases = 0
    for name, until, count in session.execute(
        _WINDOW[postgres], {"names": list(names), "physical_id": physical_id, "now": now}
    ):
        if name is None:
            releases = int(count)
        elif taken.get(name, now) is not None:  # held wins over a grace
            taken[name] = until
    return taken, releases


def read_pool(
    session: Session,
    physical_id: PhysicalId,
    now: datetime,
    pattern: PoolPattern,
    *,
    hints: PoolHints,
    pool: tuple[str, str],
    skip: Collection[str] = (),
) -> PoolRead:
    """The pool's first free names (`skip`: names not to offer, e.g. just lost to another
    unit), from its hint when that still holds (see the module doc): one lookup per window
    read; the hint moves to the first name found free."""
    hint = hints.get(pool)
    scanned = _scan(session, physical_id, now, pattern, hint, skip) if hint is not None else None
    if scanned is None:
        scanned = _scan(session, physical_id, now, pattern, None, skip)
        assert scanned is not None  # a scan without a hint has nothing to check
    read, found = scanned
    hints.put(pool, found, restarted=hint is None or read.first == pattern.start)
    return read


def _scan(
    session: Session,
    physical_id: PhysicalId,
    now: datetime,
    pattern: PoolPattern,
    hint: PoolHint | None,
    skip: Collection[str],
) -> tuple[PoolRead, PoolHint] | None:
    """Windows from the hint (None: the pool's first name) up to the first one with a name
    to offer; None when the first lookup shows the hint no longer holds."""
    start = hint.number if hint is not None else pattern.start
    valid_until = hint.valid_until if hint is not None else None
    taken: set[str] = set()
    free: list[LogicalName] = []
    first_free: int | None = None
    counted: int | None = None
    number = start
    while counted is None or (not free and number <= pattern.end):
        last = min(number + POOL_WINDOW, pattern.end + 1)
        names = [pattern.name(n) for n in range(number, last)]
        window, releases = _window(session, physical_id, now, names)
        if counted is None:
            if hint is not None and not hint.holds(releases, now):
                return None
            counted = releases
        taken.update(window)
        for offset, name in enumerate(names):
            if name not in window:
                first_free = number + offset if first_free is None else first_free
                if name not in skip:
                    free.append(name)
            elif first_free is None and (until := window[name]) is not None:
                # the hint passes a former name only until its grace ends
                valid_until = until if valid_until is None else min(valid_until, until)
        number = last
    found = first_free if first_free is not None else pattern.end + 1
    return PoolRead(start, frozenset(taken), tuple(free)), PoolHint(found, counted, valid_until)


def _claim_statement() -> Select[Any]:
    """PostgreSQL: the first of `names`, in their order, that no other unit holds, that no
    renamed identity still resolves by, and whose advisory lock this transaction takes without
    waiting. Without ORDER BY, the array is scanned in order and the scan stops at the first
    row kept: exactly one lock is taken (CASE evaluates the lock only for a free name)."""
    offered = func.unnest(bindparam("names", type_=ARRAY(String))).table_valued("name")
    name = offered.c.name
    held = exists().where(
        LogicalIdentityRow.name == name,
        BindingRow.logical_id == LogicalIdentityRow.id,
        BindingRow.ended_at.is_(None),
        BindingRow.physical_id != bindparam("physical_id"),
    )
    retired = exists().where(
        RetiredNameRow.name == name, RetiredNameRow.resolvable_until > bindparam("now")
    )
    # The key `Database.try_claim` takes for a name.
    lock = func.pg_try_advisory_xact_lock(func.hashtextextended(literal("name:") + name, 0))
    return (
        select(name)
        .select_from(offered)
        .where(case((and_(~held, ~retired), lock), else_=false()))
        .limit(1)
    )


_CLAIM = _claim_statement()


def claim(
    session: Session, physical_id: PhysicalId, now: datetime, names: Sequence[LogicalName]
) -> LogicalName | None:
    """The first of `names` this transaction now holds the claim on (see the module doc);
    None when every one was taken or claimed meanwhile."""
    if not names:
        return None
    if session.get_bind().dialect.name != "postgresql":
        return names[0]
    found = session.execute(
        _CLAIM, {"names": list(names), "physical_id": physical_id, "now": now}
    ).scalar_one_or_none()
    return LogicalName(found) if found is not None else None

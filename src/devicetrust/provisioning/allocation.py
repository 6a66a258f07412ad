"""Allocation rules: which logical identity a provisioning gives. Pure functions over plain
values (no database, no clock); the service gathers the facts and applies the decision.

    static   the name written in the enrollment
    pool     the first free name of a pattern, e.g. `line-03-left-welding-{01..24}` gives
             `line-03-left-welding-01` ... `-24`, zero-padding kept; none free: pool_exhausted
    manual   the unit waits (pending) until an operator approves a name

A unit that already holds a logical identity gets it back (`Reprovision.KEEP`) or, when the
enrollment says `REASSIGN` and its allocation now gives another name, moves to that name.
A pre-authorised replacement (`Enrollment.replaces`) takes over a held identity.

Never chooses a name that is held by another unit (except by an explicit replacement) or
that is not a valid logical name.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from devicetrust.domain.errors import InvalidInput
from devicetrust.domain.ids import LogicalName, parse_logical_name
from devicetrust.provisioning.errors import (
    InvalidEnrollment,
    InvalidPoolPattern,
    NameHeld,
    PoolExhausted,
)
from devicetrust.provisioning.records import Allocation, AllocationPolicy, Reprovision

MAX_POOL_SIZE = 100_000
_PATTERN = re.compile(
    r"^(?P<prefix>[^{}]*)\{(?P<start>\d{1,6})\.\.(?P<end>\d{1,6})\}(?P<suffix>[^{}]*)$"
)


@dataclass(frozen=True, slots=True)
class PoolPattern:
    prefix: str
    start: int
    end: int
    width: int  # zero-padded width; 0 for none
    suffix: str

    @classmethod
    def parse(cls, text: str) -> PoolPattern:
        match = _PATTERN.match(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidPoolPattern(
                "a pool pattern is prefix{first..last}suffix, e.g. line-03-left-welding-{01..24}",
                pattern=str(text)[:128],
            )
        start_text, end_text = match["start"], match["end"]
        start, end = int(start_text), int(end_text)
        if start > end or end - start + 1 > MAX_POOL_SIZE:
            raise InvalidPoolPattern(
                f"a pool counts up, with at most {MAX_POOL_SIZE} names", pattern=text[:128]
            )
        padded = len(start_text) > 1 and start_text.startswith("0")
        pattern = cls(
            match["prefix"], start, end, len(start_text) if padded else 0, match["suffix"]
        )
        try:  # both ends must be valid names (the middle then is too)
            parse_logical_name(pattern.name(start))
            parse_logical_name(pattern.name(end))
        except InvalidInput as exc:
            raise InvalidPoolPattern(
                f"the pool gives invalid logical names: {exc.message}", pattern=text[:128]
            ) from exc
        return pattern

    @property
    def size(self) -> int:
        return self.end - self.start + 1

    def name(self, number: int) -> LogicalName:
        digits = f"{number:0{self.width}d}" if self.width else str(number)
        return LogicalName(f"{self.prefix}{digits}{self.suffix}")

    def names(self) -> Iterator[LogicalName]:
        for number in range(self.start, self.end + 1):
            yield self.name(number)

    def contains(self, name: str) -> bool:
        if not (name.startswith(self.prefix) and name.endswith(self.suffix)):
            return False
        middle = name[len(self.prefix) : len(name) - len(self.suffix) if self.suffix else None]
        if not middle.isdigit() or not self.start <= int(middle) <= self.end:
            return False
        return self.name(int(middle)) == name


def next_free(
    pattern: PoolPattern, taken: Collection[str], start: int | None = None
) -> LogicalName:
    """The first name of the pool not in `taken`, looking from the name numbered `start`
    (every name before it known to be taken; default: the pool's first)."""
    for number in range(pattern.start if start is None else start, pattern.end + 1):
        name = pattern.name(number)
        if name not in taken:
            return name
    raise PoolExhausted(
        f"every name of the pool {pattern.name(pattern.start)}..{pattern.name(pattern.end)} "
        "is taken",
        size=pattern.size,
    )


class Action(enum.StrEnum):
    KEEP = "keep"  # already holds `name`: give it back
    BIND = "bind"  # bind the unit to `name` (created if it does not exist)
    REPLACE = "replace"  # take `name` over from its current holder
    REASSIGN = "reassign"  # leave `current` and bind `name`
    PENDING = "pending"  # wait for an operator


@dataclass(frozen=True, slots=True)
class Facts:
    """What the service read about the unit and the names, before deciding."""

    current: LogicalName | None  # what the unit holds now
    taken: frozenset[str]  # names held by other units (or retired and still resolving)
    approved: LogicalName | None = None  # an operator's choice (manual allocation)
    replaces_held: bool = False  # the replacement's target is held by another unit
    pool_from: int | None = None  # every name of the pool numbered below it is taken
    pool_free: tuple[LogicalName, ...] = ()  # the pool's first free names read, in order


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    name: LogicalName | None = None
    current: LogicalName | None = None


def decide(
    allocation: Allocation, facts: Facts, *, replaces: LogicalName | None = None
) -> Decision:
    """The allocation decision for one unit; raises `PoolExhausted` when a pool is full."""
    if facts.current is not None:
        return _reprovision(allocation, facts)
    if replaces is not None:
        if facts.replaces_held:
            return Decision(Action.REPLACE, replaces)
        return Decision(Action.BIND, replaces)
    wanted = _wanted(allocation, facts)
    if wanted is None:
        return Decision(Action.PENDING)
    _check_free(wanted, facts)
    return Decision(Action.BIND, wanted)


def _check_free(name: LogicalName, facts: Facts) -> None:
    if name in facts.taken:
        raise NameHeld(f"logical identity {name!r} is held by another unit", name=name)


def _wanted(allocation: Allocation, facts: Facts) -> LogicalName | None:
    if facts.approved is not None:
        return facts.approved
    if allocation.policy is AllocationPolicy.STATIC:
        assert allocation.static_name is not None
        return allocation.static_name
    if allocation.policy is AllocationPolicy.POOL:
        assert allocation.pool_pattern is not None
        return next_free(PoolPattern.parse(allocation.pool_pattern), facts.taken, facts.pool_from)
    return None


def _reprovision(allocation: Allocation, facts: Facts) -> Decision:
    current = facts.current
    assert current is not None
    keep = Decision(Action.KEEP, current, current)
    if allocation.reprovision is Reprovision.KEEP:
        return keep
    if allocation.policy is AllocationPolicy.POOL:
        assert allocation.pool_pattern is not None
        pattern = PoolPattern.parse(allocation.pool_pattern)
        if pattern.contains(current):
            return keep
        return Decision(Action.REASSIGN, next_free(pattern, facts.taken, facts.pool_from), current)
    wanted = facts.approved if facts.approved is not None else allocation.static_name
    if wanted is None or wanted == current:
        return keep
    _check_free(wanted, facts)
    return Decision(Action.REASSIGN, wanted, current)


def check_allocation(allocation: Allocation) -> Allocation:
    """Refuse an allocation that cannot work (used when an enrollment is written)."""
    if allocation.policy is AllocationPolicy.STATIC:
        if allocation.static_name is None or allocation.pool_pattern is not None:
            raise InvalidEnrollment("static allocation names one logical name and no pool")
        parse_logical_name(allocation.static_name)
    elif allocation.policy is AllocationPolicy.POOL:
        if allocation.pool_pattern is None or allocation.static_name is not None:
            raise InvalidEnrollment("pool allocation has a pool pattern and no static name")
        PoolPattern.parse(allocation.pool_pattern)
    elif allocation.static_name is not None or allocation.pool_pattern is not None:
        raise InvalidEnrollment("manual allocation has neither a static name nor a pool")
    return allocation

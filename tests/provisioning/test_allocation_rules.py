"""The pure allocation rules: pool patterns, next free name, the decision table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devicetrust.domain.ids import LogicalName
from devicetrust.provisioning import (
    Allocation,
    AllocationPolicy,
    InvalidPoolPattern,
    NameHeld,
    PoolExhausted,
    PoolPattern,
    Reprovision,
    next_free,
)
from devicetrust.provisioning.allocation import Action, Facts, decide

POOL = "line-03-left-welding-{01..24}"


def test_pool_pattern_keeps_zero_padding() -> None:
    pattern = PoolPattern.parse(POOL)
    names = list(pattern.names())
    assert names[0] == "line-03-left-welding-01"
    assert names[-1] == "line-03-left-welding-24"
    assert len(names) == 24
    assert list(PoolPattern.parse("cell-{1..3}").names()) == ["cell-1", "cell-2", "cell-3"]
    assert PoolPattern.parse("r{008..010}.arm").name(9) == "r009.arm"


@pytest.mark.parametrize(
    "text", ["line-{24..01}", "line", "line-{a..b}", "Line-{01..02}", "x-{1..2}-{3..4}", "-{1..2}"]
)
def test_bad_patterns_are_refused(text: str) -> None:
    with pytest.raises(InvalidPoolPattern) as err:
        PoolPattern.parse(text)
    assert err.value.code == "provisioning.invalid_pool_pattern"


def test_next_free_until_exhausted() -> None:
    pattern = PoolPattern.parse("cell-{01..03}")
    taken: set[str] = set()
    for expected in ("cell-01", "cell-02", "cell-03"):
        name = next_free(pattern, taken)
        assert name == expected
        taken.add(name)
    with pytest.raises(PoolExhausted) as err:
        next_free(pattern, taken)
    assert err.value.code == "provisioning.pool_exhausted"


@given(
    start=st.integers(0, 50),
    size=st.integers(1, 60),
    padded=st.booleans(),
    taken_numbers=st.sets(st.integers(0, 120)),
)
def test_next_free_is_the_first_untaken_name_of_the_pool(
    start: int, size: int, padded: bool, taken_numbers: set[int]
) -> None:
    end = start + size - 1
    width = len(str(end)) + 1 if padded else 0
    first = f"{start:0{width}d}" if padded else str(start)
    last = f"{end:0{width}d}" if padded else str(end)
    pattern = PoolPattern.parse(f"unit-{{{first}..{last}}}")
    taken = {pattern.name(n) for n in taken_numbers if start <= n <= end}
    free = [n for n in range(start, end + 1) if pattern.name(n) not in taken]
    if not free:
        with pytest.raises(PoolExhausted):
            next_free(pattern, taken)
        return
    name = next_free(pattern, taken)
    assert name == pattern.name(free[0])
    assert name not in taken and pattern.contains(name)
    assert all(len(n) == len(pattern.name(start)) for n in pattern.names()) or not padded


@given(st.integers(0, 999))
def test_contains_only_the_pool_names(number: int) -> None:
    pattern = PoolPattern.parse(POOL)
    name = f"line-03-left-welding-{number:02d}"
    assert pattern.contains(name) == (1 <= number <= 24)
    assert not pattern.contains(f"line-03-left-welding-{number}x")


def _static(name: str, reprovision: Reprovision = Reprovision.KEEP) -> Allocation:
    return Allocation(
        AllocationPolicy.STATIC, static_name=LogicalName(name), reprovision=reprovision
    )


def test_decisions() -> None:
    fresh = Facts(current=None, taken=frozenset())
    assert decide(_static("a-1"), fresh).action is Action.BIND
    manual = Allocation(AllocationPolicy.MANUAL)
    assert decide(manual, fresh).action is Action.PENDING
    approved = Facts(current=None, taken=frozenset(), approved=LogicalName("m-1"))
    assert decide(manual, approved) == decide(_static("m-1"), fresh)
    bound = Facts(current=LogicalName("a-1"), taken=frozenset())
    assert decide(_static("b-1"), bound).action is Action.KEEP
    reassign = decide(_static("b-1", Reprovision.REASSIGN), bound)
    assert (reassign.action, reassign.name, reassign.current) == (Action.REASSIGN, "b-1", "a-1")
    held = Facts(current=None, taken=frozenset({"x-1"}), replaces_held=True)
    assert decide(manual, held, replaces=LogicalName("x-1")).action is Action.REPLACE
    with pytest.raises(NameHeld):
        decide(_static("x-1"), held)


@given(st.sets(st.integers(1, 24)), st.booleans())
def test_decision_never_gives_a_held_name(taken_numbers: set[int], bound: bool) -> None:
    pattern = PoolPattern.parse(POOL)
    taken = frozenset(pattern.name(n) for n in taken_numbers)
    allocation = Allocation(
        AllocationPolicy.POOL, pool_pattern=POOL, reprovision=Reprovision.REASSIGN
    )
    facts = Facts(current=LogicalName("elsewhere-1") if bound else None, taken=taken)
    try:
        decision = decide(allocation, facts)
    except PoolExhausted:
        assert len(taken) == 24
        return
    assert decision.name not in taken
    assert decision.action is (Action.REASSIGN if bound else Action.BIND)

"""The lifecycle state machine, checked exhaustively (pure rules, no fixtures)."""

from __future__ import annotations

import itertools

import pytest

from devicetrust.domain import DeviceState, InvalidTransition, check_transition
from devicetrust.domain.lifecycle import release_target

S = DeviceState
ALLOWED = {
    (S.MANUFACTURED, S.PROVISIONED),
    (S.MANUFACTURED, S.QUARANTINED),
    (S.MANUFACTURED, S.DECOMMISSIONED),
    (S.PROVISIONED, S.ACTIVE),
    (S.PROVISIONED, S.SUSPENDED),
    (S.PROVISIONED, S.QUARANTINED),
    (S.PROVISIONED, S.DECOMMISSIONED),
    (S.ACTIVE, S.SUSPENDED),
    (S.ACTIVE, S.QUARANTINED),
    (S.ACTIVE, S.DECOMMISSIONED),
    (S.SUSPENDED, S.ACTIVE),
    (S.SUSPENDED, S.QUARANTINED),
    (S.SUSPENDED, S.DECOMMISSIONED),
    (S.QUARANTINED, S.DECOMMISSIONED),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_every_pair_of_states(current: DeviceState, target: DeviceState) -> None:
    if (current, target) in ALLOWED:
        check_transition(current, target)
    else:
        with pytest.raises(InvalidTransition):
            check_transition(current, target)


def test_decommissioned_is_final() -> None:
    for target in S:
        with pytest.raises(InvalidTransition):
            check_transition(S.DECOMMISSIONED, target)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, S.MANUFACTURED),
        (S.MANUFACTURED, S.MANUFACTURED),
        (S.PROVISIONED, S.SUSPENDED),
        (S.ACTIVE, S.SUSPENDED),
        (S.SUSPENDED, S.SUSPENDED),
    ],
)
def test_release_never_goes_straight_to_active(
    before: DeviceState | None, after: DeviceState
) -> None:
    target = release_target(before)
    assert target is after
    check_transition(S.QUARANTINED, target, releasing=True)


def test_quarantine_is_left_only_by_release() -> None:
    with pytest.raises(InvalidTransition) as err:
        check_transition(S.QUARANTINED, S.SUSPENDED)
    assert err.value.code == "lifecycle.quarantine_needs_release"
    with pytest.raises(InvalidTransition):
        check_transition(S.QUARANTINED, S.ACTIVE, releasing=True)

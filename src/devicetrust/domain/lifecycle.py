"""Device lifecycle states and the transitions allowed between them.

    manufactured -> provisioned -> active <-> suspended
    any live state -> quarantined  (left only by an explicit operator release)
    any state but decommissioned -> decommissioned (final)

A release from quarantine never returns a unit straight to `active`: it goes to `suspended`
(or back to `manufactured` if it was never provisioned), so re-activation is a second,
conscious step.
"""

from __future__ import annotations

import enum

from devicetrust.domain.errors import InvalidTransition


class DeviceState(enum.StrEnum):
    MANUFACTURED = "manufactured"
    PROVISIONED = "provisioned"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    QUARANTINED = "quarantined"
    DECOMMISSIONED = "decommissioned"


class ReplacementFate(enum.StrEnum):
    """What happens to the old unit in a replacement."""

    DECOMMISSIONED = "decommissioned"
    QUARANTINED = "quarantined"


LIVE_STATES = frozenset(
    {DeviceState.MANUFACTURED, DeviceState.PROVISIONED, DeviceState.ACTIVE, DeviceState.SUSPENDED}
)

_ALLOWED: dict[DeviceState, frozenset[DeviceState]] = {
    DeviceState.MANUFACTURED: frozenset(
        {DeviceState.PROVISIONED, DeviceState.QUARANTINED, DeviceState.DECOMMISSIONED}
    ),
    DeviceState.PROVISIONED: frozenset(
        {
            DeviceState.ACTIVE,
            DeviceState.SUSPENDED,
            DeviceState.QUARANTINED,
            DeviceState.DECOMMISSIONED,
        }
    ),
    DeviceState.ACTIVE: frozenset(
        {DeviceState.SUSPENDED, DeviceState.QUARANTINED, DeviceState.DECOMMISSIONED}
    ),
    DeviceState.SUSPENDED: frozenset(
        {DeviceState.ACTIVE, DeviceState.QUARANTINED, DeviceState.DECOMMISSIONED}
    ),
    # Leaving quarantine goes through `release_target`, never to ACTIVE directly.
    DeviceState.QUARANTINED: frozenset(
        {DeviceState.SUSPENDED, DeviceState.MANUFACTURED, DeviceState.DECOMMISSIONED}
    ),
    DeviceState.DECOMMISSIONED: frozenset(),
}


def allowed_targets(current: DeviceState) -> frozenset[DeviceState]:
    return _ALLOWED[current]


def check_transition(current: DeviceState, target: DeviceState, *, releasing: bool = False) -> None:
    """Refuse a transition the lifecycle does not allow.

    Leaving quarantine for anything but decommissioning requires `releasing=True`
    (the operator's explicit release).
    """
    leaving_quarantine = (
        current is DeviceState.QUARANTINED and target is not DeviceState.DECOMMISSIONED
    )
    if leaving_quarantine and not releasing:
        raise InvalidTransition(
            "lifecycle.quarantine_needs_release",
            "a quarantined unit leaves quarantine only by an explicit operator release",
            current=current.value,
            target=target.value,
        )
    if target not in _ALLOWED[current]:
        raise InvalidTransition(
            "lifecycle.invalid_transition",
            f"cannot go from {current.value} to {target.value}",
            current=current.value,
            target=target.value,
        )


def release_target(quarantined_from: DeviceState | None) -> DeviceState:
    """Where an operator release takes a quarantined unit."""
    if quarantined_from in (None, DeviceState.MANUFACTURED):
        return DeviceState.MANUFACTURED
    return DeviceState.SUSPENDED


def can_hold_binding(state: DeviceState) -> bool:
    """Only live units (not quarantined, not decommissioned) may take a logical identity."""
    return state in LIVE_STATES

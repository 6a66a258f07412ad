"""Where a policy setting or relaxation applies: the fleet, an enrollment, or one device.

    fleet                           every device
    enrollment:<name>               devices admitted by that provisioning enrollment
    device:<physical-id>            one unit

Pure parsing; whether the enrollment or unit exists is the service's check. Never accepts a
device scope whose id is not a canonical UUIDv4.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from devicetrust.domain.errors import InvalidInput
from devicetrust.domain.ids import parse_physical_id
from devicetrust.policy.errors import InvalidPolicy


class ScopeKind(enum.StrEnum):
    FLEET = "fleet"
    ENROLLMENT = "enrollment"
    DEVICE = "device"

    @property
    def level(self) -> int:
        """Resolution order: a more specific scope has a higher level."""
        return _LEVEL[self]


_LEVEL = {ScopeKind.FLEET: 0, ScopeKind.ENROLLMENT: 1, ScopeKind.DEVICE: 2}


@dataclass(frozen=True, slots=True, order=True)
class PolicyScope:
    kind: ScopeKind
    ref: str = ""  # enrollment name or physical id; empty for the fleet

    @property
    def key(self) -> str:
        """The stored and displayed form: `fleet`, `enrollment:line-03`, `device:<id>`."""
        return self.kind.value if self.kind is ScopeKind.FLEET else f"{self.kind.value}:{self.ref}"

    def __str__(self) -> str:
        return self.key


FLEET = PolicyScope(ScopeKind.FLEET)


def parse_scope(value: object) -> PolicyScope:
    if not isinstance(value, str) or not 0 < len(value) <= 200 or "\x00" in value:
        raise _bad(value)
    kind_text, sep, ref = value.strip().partition(":")
    kind_text = kind_text.strip().lower()
    if kind_text == ScopeKind.FLEET and not sep:
        return FLEET
    if kind_text == ScopeKind.ENROLLMENT and ref.strip() and len(ref.strip()) <= 128:
        return PolicyScope(ScopeKind.ENROLLMENT, ref.strip())
    if kind_text == ScopeKind.DEVICE and ref:
        try:
            return PolicyScope(ScopeKind.DEVICE, parse_physical_id(ref))
        except InvalidInput:
            raise InvalidPolicy(
                "policy.invalid_scope", f"device:{ref[:64]} does not name a canonical UUIDv4"
            ) from None
    raise _bad(value)


def _bad(value: object) -> InvalidPolicy:
    return InvalidPolicy(
        "policy.invalid_scope",
        f"a scope is fleet, enrollment:<name> or device:<physical-id>; got {str(value)[:64]!r}",
    )

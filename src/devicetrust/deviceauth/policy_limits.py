"""The security policy (`devicetrust.policy`) as the limits a unit authenticates under.

    auth = DeviceAuthService(..., limits_for=PolicyLimits(platform.policy, clock))

Maps the unit's effective policy to `AuthLimits`: the allowed methods, the maximum token
lifetime and the clock-skew window (both clamped to deviceauth's own hard bounds), the JWT
algorithms its key algorithms admit (ES256 needs `ec-p256`, EdDSA `ed25519`), and the source
networks it may connect from.

Resolving a policy reads several rows, so limits are kept and reused only while nothing
they depend on can have changed: the enrollment and the change marks (`policy.change_mark`)
of the fleet, that enrollment and the unit's own scope are the ones they were resolved
under -- an authentication reads them with the unit's standing, in its one statement
(`for_standing`) -- and no relaxation they include has lapsed. A unit whose own scope never
had a policy change (most) shares the limits of its enrollment: a unit connecting for the
first time costs no policy read. A policy tightened by any process applies from the next
authentication on, never later. `ttl` only bounds how long an unchanged entry is kept;
`forget()` drops them all. A unit the registry does not know gets limits that admit
nothing: authentication then fails closed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from devicetrust.deviceauth._read_once import read_once
from devicetrust.deviceauth._unit import STANDING_BY_ID, UnitStanding
from devicetrust.deviceauth.records import (
    MAX_CLOCK_SKEW,
    MAX_TOKEN_LIFETIME,
    AuthLimits,
    AuthMethod,
    JwtAlgorithm,
)
from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import NotFound
from devicetrust.domain.ids import PhysicalId
from devicetrust.policy import KeyAlgorithmName, PolicyService, SecurityPolicy

NOTHING = AuthLimits(methods=frozenset())
MAX_CACHED = 100_000
_JWT_BY_KEY = {
    KeyAlgorithmName.EC_P256: JwtAlgorithm.ES256,
    KeyAlgorithmName.ED25519: JwtAlgorithm.EDDSA,
}


def limits_of(policy: SecurityPolicy) -> AuthLimits:
    return AuthLimits(
        methods=frozenset(AuthMethod(m.value) for m in policy.auth_methods),
        max_token_lifetime=max(
            timedelta(seconds=1), min(policy.max_token_lifetime, MAX_TOKEN_LIFETIME)
        ),
        clock_skew=min(policy.clock_skew, MAX_CLOCK_SKEW),
        jwt_algorithms=frozenset(
            alg for key, alg in _JWT_BY_KEY.items() if key in policy.key_algorithms
        ),
        allowed_networks=tuple(policy.allowed_networks),
    )


# What a unit's limits depend on: its enrollment, the change marks of the fleet and that
# enrollment, and -- only when its own scope ever had a policy change -- the unit itself.
_Key = tuple[str | None, int | None, int | None, str | None]


@dataclass(frozen=True, slots=True)
class _Resolved:
    until: datetime
    limits: AuthLimits


class PolicyLimits:
    """A `LimitsFor` backed by the policy service, kept per enrollment (per unit when its
    own scope has policy) and checked against the scopes' change marks."""

    def __init__(
        self, policy: PolicyService, clock: Clock, *, ttl: timedelta = timedelta(minutes=5)
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[_Key, _Resolved] = {}
        self._lock = threading.Lock()

    def __call__(self, physical_id: PhysicalId) -> AuthLimits:
        """The unit's limits, its standing read first (one statement)."""
        found = read_once(self._policy.database, STANDING_BY_ID, {"pid": physical_id})
        if found is None:
            return NOTHING
        return self.for_standing(UnitStanding.from_columns(physical_id, found))

    def for_standing(self, unit: UnitStanding) -> AuthLimits:
        """The limits of a unit whose standing (with its enrollment and the change marks of
        its scopes) was just read."""
        own = unit.physical_id if unit.unit_policy_mark is not None else None
        key: _Key = (unit.enrollment, unit.policy_mark, unit.unit_policy_mark, own)
        now = self._clock.now()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now < cached.until:
            return cached.limits
        try:
            # Read after the marks: what it resolves is at least as new as they say. The
            # enrollment is the standing's, so the result belongs to `key` exactly.
            effective = self._policy.effective(unit.physical_id, enrollment=unit.enrollment)
        except NotFound:
            return NOTHING
        limits = limits_of(effective.policy)
        if effective.enrollment != unit.enrollment:
            return limits  # registered meanwhile: right for this unit, not for `key`
        until = now + self._ttl
        if effective.valid_until is not None:
            until = min(until, effective.valid_until)
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[key] = _Resolved(until, limits)
        return limits

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()

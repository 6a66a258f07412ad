"""The security policy (`devicetrust.policy`) as the limits a unit authenticates under.

    auth = DeviceAuthService(..., limits_for=PolicyLimits(platform.policy, clock))

Maps the unit's effective policy to `AuthLimits`: the allowed methods, the maximum token
lifetime and the clock-skew window (both clamped to deviceauth's own hard bounds), the JWT
algorithms its key algorithms admit (ES256 needs `ec-p256`, EdDSA `ed25519`), and the source
networks it may connect from.

Resolving a policy reads the database, so each unit's limits are kept for `ttl` (default
5 s), and never past the moment one of its relaxations lapses. `forget()` drops them all
(call it on `policy.*` events). A unit the registry does not know gets limits that admit
nothing: authentication then fails closed.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

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


class PolicyLimits:
    """A `LimitsFor` backed by the policy service, with a short per-unit cache."""

    def __init__(
        self, policy: PolicyService, clock: Clock, *, ttl: timedelta = timedelta(seconds=5)
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[str, tuple[datetime, AuthLimits]] = {}
        self._lock = threading.Lock()

    def __call__(self, physical_id: PhysicalId) -> AuthLimits:
        now = self._clock.now()
        with self._lock:
            cached = self._cache.get(physical_id)
        if cached is not None and now < cached[0]:
            return cached[1]
        try:
            effective = self._policy.effective(physical_id)
        except NotFound:
            return NOTHING
        limits = limits_of(effective.policy)
        until = now + self._ttl
        if effective.valid_until is not None:
            until = min(until, effective.valid_until)
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[physical_id] = (until, limits)
        return limits

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()

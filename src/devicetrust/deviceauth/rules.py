"""The decisions of device authentication, as pure functions over plain values (no clock,
no store): is the token inside its time window, is the method allowed, may a unit in this
lifecycle state connect, does a credential name the identity the unit holds.

Order of checks every authenticator follows (each refusal names the first failed check):

1. format       the credential parses                          auth.token_malformed / cert_*
2. key          the key it names exists and is accepted now     auth.key_unknown / _revoked
                                                                / _retired, auth.algorithm_refused
3. proof        MAC, signature or chain verifies                auth.token_invalid / cert_*
4. audience     made for this resource / audience               auth.token_wrong_audience
5. method       the unit's limits allow the method              auth.method_not_allowed (403)
6. time         not expired, not ahead, not too long-lived      auth.token_expired /
                                                                _not_yet_valid / _lifetime_exceeded
7. unit         the unit's lifecycle state admits connections   auth.unit_* (403)
8. identity     a logical name it carries is the unit's now     auth.identity_stale
9. single use   the nonce / jti was never spent                 auth.token_replayed
10. source      the entry point's peer address is inside the    auth.network_not_allowed (403)
                unit's allowed networks (`DeviceAuthService`,
                once the unit is proven; a token is spent by then)

Nothing after step 3 is decided on a claim that was not proven.
"""

from __future__ import annotations

from datetime import datetime
from ipaddress import IPv4Network, IPv6Network, ip_address

from devicetrust.deviceauth.errors import (
    MethodNotAllowed,
    NetworkNotAllowed,
    TokenExpired,
    TokenLifetimeExceeded,
    TokenNotYetValid,
    UnitDecommissioned,
    UnitQuarantined,
    UnitSuspended,
)
from devicetrust.deviceauth.records import AuthLimits, AuthMethod
from devicetrust.domain.lifecycle import DeviceState

# Units in these states connect; every other state is refused whatever the credential.
ADMITTED_STATES = frozenset({DeviceState.MANUFACTURED, DeviceState.PROVISIONED, DeviceState.ACTIVE})


def check_method(limits: AuthLimits, method: AuthMethod) -> None:
    if method not in limits.methods:
        raise MethodNotAllowed(
            f"the unit may not authenticate with {method.value}", method=method.value
        )


def check_token_time(
    now: datetime,
    limits: AuthLimits,
    *,
    expires: datetime,
    issued_at: datetime | None = None,
    not_before: datetime | None = None,
) -> None:
    """The token's validity window against `now`, allowing `limits.clock_skew` either way,
    and its lifetime against `limits.max_token_lifetime` (from `issued_at` when the token
    states it, else from now)."""
    skew = limits.clock_skew
    if now > expires + skew:
        raise TokenExpired("the token has expired", exp=expires.isoformat())
    for name, start in (("iat", issued_at), ("nbf", not_before)):
        if start is not None and start > now + skew:
            raise TokenNotYetValid(
                f"the token's {name} is in the future", **{name: start.isoformat()}
            )
    if issued_at is not None and expires - issued_at > limits.max_token_lifetime:
        raise TokenLifetimeExceeded(
            f"a token may be valid for at most {limits.max_token_lifetime}",
            exp=expires.isoformat(),
            iat=issued_at.isoformat(),
        )
    if expires - now > limits.max_token_lifetime + skew:
        raise TokenLifetimeExceeded(
            f"a token may be valid for at most {limits.max_token_lifetime}",
            exp=expires.isoformat(),
        )


def check_source(limits: AuthLimits, source: str) -> None:
    """The address the unit connects from is inside its allowed networks (an IPv4-mapped
    IPv6 address is judged as IPv4). Anything but an IP address is refused, unless the
    limits admit every address."""
    networks = limits.allowed_networks
    if networks is None or _admits_all(networks):
        return
    try:
        ip = ip_address(source.strip())
    except ValueError:
        raise NetworkNotAllowed("the source is not an IP address", source=source[:64]) from None
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    if not any(ip.version == net.version and ip in net for net in networks):
        raise NetworkNotAllowed("the source is outside the unit's allowed networks", source=str(ip))


def _admits_all(networks: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    return {(n.version, n.prefixlen) for n in networks} >= {(4, 0), (6, 0)}


def replay_horizon(expires: datetime, limits: AuthLimits) -> datetime:
    """Until when a spent nonce/jti must be remembered: as long as the token is accepted."""
    return expires + limits.clock_skew


def check_unit_state(state: DeviceState) -> None:
    """Suspended, quarantined and decommissioned units are refused whatever they present (a
    replaced unit is decommissioned or quarantined by the replacement)."""
    if state in ADMITTED_STATES:
        return
    if state is DeviceState.SUSPENDED:
        raise UnitSuspended("the unit is suspended", state=state.value)
    if state is DeviceState.QUARANTINED:
        raise UnitQuarantined("the unit is quarantined", state=state.value)
    raise UnitDecommissioned("the unit is decommissioned", state=state.value)

"""The pure decisions (`deviceauth.rules`, `AuthLimits`), exhaustively and without fixtures:
no token is accepted past its expiry plus the skew, nor for longer than the maximum lifetime;
only units in service connect; the error tree gives every refusal a stable code, a 401/403
status and one public message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import devicetrust.deviceauth as deviceauth
from devicetrust.deviceauth import (
    PUBLIC_MESSAGE,
    AuthLimits,
    AuthMethod,
    AuthRefused,
    CredentialRefused,
    DeviceForbidden,
    InvalidLimits,
    rules,
)
from devicetrust.domain import DeviceState
from devicetrust.domain.errors import Forbidden, Unauthorized

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
seconds = st.integers(-3 * 86400, 3 * 86400).map(lambda s: timedelta(seconds=s))
limits = st.builds(
    AuthLimits,
    max_token_lifetime=st.integers(1, 86400).map(lambda s: timedelta(seconds=s)),
    clock_skew=st.integers(0, 900).map(lambda s: timedelta(seconds=s)),
)


@given(limits=limits, exp=seconds, iat=st.none() | seconds)
def test_accepted_tokens_are_inside_their_window(
    limits: AuthLimits, exp: timedelta, iat: timedelta | None
) -> None:
    expires = NOW + exp
    issued = NOW + iat if iat is not None else None
    try:
        rules.check_token_time(NOW, limits, expires=expires, issued_at=issued)
    except CredentialRefused:
        return
    assert expires + limits.clock_skew >= NOW
    assert expires - NOW <= limits.max_token_lifetime + limits.clock_skew
    if issued is not None:
        assert issued <= NOW + limits.clock_skew
        assert expires - issued <= limits.max_token_lifetime


def test_time_refusals_name_their_reason() -> None:
    strict = AuthLimits(max_token_lifetime=timedelta(minutes=10), clock_skew=timedelta(0))
    cases = [
        ({"expires": NOW - timedelta(seconds=1)}, "auth.token_expired"),
        ({"expires": NOW + timedelta(minutes=11)}, "auth.token_lifetime_exceeded"),
        (
            {"expires": NOW + timedelta(minutes=5), "issued_at": NOW - timedelta(minutes=6)},
            "auth.token_lifetime_exceeded",
        ),
        (
            {"expires": NOW + timedelta(minutes=5), "issued_at": NOW + timedelta(seconds=1)},
            "auth.token_not_yet_valid",
        ),
        (
            {"expires": NOW + timedelta(minutes=5), "not_before": NOW + timedelta(seconds=1)},
            "auth.token_not_yet_valid",
        ),
    ]
    for kwargs, code in cases:
        with pytest.raises(CredentialRefused) as caught:
            rules.check_token_time(NOW, strict, **kwargs)  # type: ignore[arg-type]
        assert caught.value.code == code
    rules.check_token_time(NOW, strict, expires=NOW)  # the last instant is still valid


@pytest.mark.parametrize("state", list(DeviceState))
def test_only_units_in_service_connect(state: DeviceState) -> None:
    admitted = {DeviceState.MANUFACTURED, DeviceState.PROVISIONED, DeviceState.ACTIVE}
    if state in admitted:
        rules.check_unit_state(state)
        return
    with pytest.raises(DeviceForbidden) as caught:
        rules.check_unit_state(state)
    assert caught.value.code == f"auth.unit_{state.value}"


def test_empty_method_set_admits_nothing() -> None:
    closed = AuthLimits(methods=frozenset())
    for method in AuthMethod:
        with pytest.raises(DeviceForbidden) as caught:
            rules.check_method(closed, method)
        assert caught.value.code == "auth.method_not_allowed"


@pytest.mark.parametrize(
    "changes",
    [
        {"max_token_lifetime": timedelta(0)},
        {"max_token_lifetime": timedelta(hours=25)},
        {"clock_skew": timedelta(minutes=16)},
        {"clock_skew": timedelta(seconds=-1)},
        {"methods": frozenset({"mtls"})},
        {"jwt_algorithms": frozenset({"HS256"})},
    ],
)
def test_limits_out_of_bounds_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidLimits):
        AuthLimits(**changes)  # type: ignore[arg-type]


def test_every_refusal_has_a_stable_code_status_and_the_same_public_message() -> None:
    refusals = [
        getattr(deviceauth, name)
        for name in deviceauth.__all__
        if isinstance(getattr(deviceauth, name), type)
        and issubclass(getattr(deviceauth, name), AuthRefused)
        and getattr(deviceauth, name)
        not in (AuthRefused, CredentialRefused, DeviceForbidden, deviceauth.AuthRateLimited)
    ]
    assert len(refusals) >= 20
    codes = set()
    for cls in refusals:
        error = (
            cls("m") if cls is not deviceauth.CertificateNotAccepted else cls("auth.cert_x", "m")
        )
        assert error.code.startswith("auth.")
        assert isinstance(error, Unauthorized | Forbidden)
        # The one named refusal: raised only after the credential was proven (no oracle).
        public = NETWORK_MESSAGE if cls is deviceauth.NetworkNotAllowed else PUBLIC_MESSAGE
        assert error.public_problem() == (error.status, public)
        assert error.status == (403 if isinstance(error, DeviceForbidden) else 401)
        codes.add(error.code)
    assert len(codes) == len(refusals)


NETWORK_MESSAGE = "the device may not authenticate from this network"
LAN = (ip_network("10.3.0.0/16"), ip_network("fd00::/8"))


@pytest.mark.parametrize("source", ["10.3.0.1", "10.3.255.255", "::ffff:10.3.1.2", "fd00::5"])
def test_a_source_inside_the_allowed_networks_passes(source: str) -> None:
    rules.check_source(AuthLimits(allowed_networks=LAN), source)


@pytest.mark.parametrize("source", ["10.4.0.1", "192.0.2.1", "::1", "fe80::1", "testclient", ""])
def test_a_source_outside_the_allowed_networks_is_refused(source: str) -> None:
    with pytest.raises(deviceauth.NetworkNotAllowed) as refused:
        rules.check_source(AuthLimits(allowed_networks=LAN), source)
    assert refused.value.code == "auth.network_not_allowed"


@pytest.mark.parametrize(
    "networks", [None, (ip_network("0.0.0.0/0"), ip_network("::/0"))], ids=["none", "any"]
)
def test_limits_that_admit_every_address_admit_any_source(networks: tuple[Any, ...]) -> None:
    for source in ("192.0.2.1", "::1", "testclient"):
        rules.check_source(AuthLimits(allowed_networks=networks), source)

"""The security policy decides how a unit may authenticate: under the baseline an HMAC token
is refused (the server holds its key too); a relaxation admits it until it lapses; an
unknown unit gets limits that admit nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from ipaddress import ip_network

import pytest

from devicetrust.deviceauth import (
    AuthMethod,
    AuthRefused,
    DeviceAuthService,
    JwtAlgorithm,
    NetworkNotAllowed,
    encode_token,
    new_nonce,
    rules,
)
from devicetrust.deviceauth.policy_limits import NOTHING, PolicyLimits, limits_of
from devicetrust.domain import FixedClock, PhysicalId
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.policy import BASELINE, PolicyService
from devicetrust.store.database import Database
from devicetrust.vault import Vault
from tests.deviceauth.conftest import ACTOR, RESOURCE


def test_the_baseline_admits_certificates_and_jwts_only() -> None:
    limits = limits_of(BASELINE)
    assert limits.methods == {AuthMethod.MTLS, AuthMethod.JWT}
    assert limits.max_token_lifetime == BASELINE.max_token_lifetime
    assert limits.jwt_algorithms == {JwtAlgorithm.ES256, JwtAlgorithm.EDDSA}
    assert limits.allowed_networks == BASELINE.allowed_networks  # both /0: any source


def test_the_allowed_networks_follow_the_policy() -> None:
    restricted = replace(BASELINE, allowed_networks=(ip_network("10.3.0.0/16"),))
    limits = limits_of(restricted)
    assert limits.allowed_networks == (ip_network("10.3.0.0/16"),)
    with pytest.raises(NetworkNotAllowed):
        rules.check_source(limits, "10.4.0.1")
    rules.check_source(limits, "10.3.0.1")


def test_hmac_tokens_need_a_relaxation_and_lose_it_when_it_lapses(
    db: Database, clock: FixedClock, vault: Vault, unit: PhysicalIdentity
) -> None:
    policy = PolicyService(db, clock)
    limits = PolicyLimits(policy, clock, ttl=timedelta(seconds=5))
    auth = DeviceAuthService(db, clock, vault, limits_for=limits)
    with auth.token_keys.rotate(unit.physical_id, actor=ACTOR) as shown:
        key = bytes(shown.key)

    def token() -> str:
        expires = clock.now() + timedelta(minutes=10)
        return encode_token(key, unit.physical_id, 1, RESOURCE, expires, new_nonce())

    with pytest.raises(AuthRefused) as refused:
        auth.authenticate_hmac_token(token(), resource=RESOURCE)
    assert refused.value.code == "auth.method_not_allowed"

    policy.relax(
        "auth_methods",
        ["mtls", "jwt", "hmac-token"],
        f"device:{unit.physical_id}",
        reason="legacy controller without a key store",
        expires=timedelta(hours=1),
        actor=ACTOR,
    )
    limits.forget()
    device = auth.authenticate_hmac_token(token(), resource=RESOURCE)
    assert device.method is AuthMethod.HMAC_TOKEN

    clock.advance(timedelta(hours=1, seconds=1))  # the relaxation lapses: cache or not
    with pytest.raises(AuthRefused) as refused:
        auth.authenticate_hmac_token(token(), resource=RESOURCE)
    assert refused.value.code == "auth.method_not_allowed"


def test_an_unknown_unit_gets_limits_that_admit_nothing(
    db: Database, clock: FixedClock
) -> None:
    limits = PolicyLimits(PolicyService(db, clock), clock)
    assert limits(PhysicalId("6f1c1f4e-3c55-4d7e-9d1e-0f9f3c2b1a00")) is NOTHING

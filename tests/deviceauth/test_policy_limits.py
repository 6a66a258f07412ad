"""The security policy decides how a unit may authenticate: under the baseline an HMAC token
is refused (the server holds its key too); a relaxation admits it until it lapses; an
unknown unit gets limits that admit nothing. A unit's limits are kept until a policy change
to one of its scopes commits, made by any process, and not a moment longer."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from ipaddress import ip_network

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from devicetrust.deviceauth import (
    AuthMethod,
    AuthRefused,
    DeviceAuthService,
    JwtAlgorithm,
    NetworkNotAllowed,
    device_verifier,
    encode_token,
    new_nonce,
    rules,
)
from devicetrust.deviceauth.policy_limits import NOTHING, PolicyLimits, limits_of
from devicetrust.domain import FixedClock, PhysicalId
from devicetrust.domain.events import EventType
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.pki import Hierarchy, PkiService, Profile
from devicetrust.policy import BASELINE, EffectivePolicy, PolicyService
from devicetrust.policy.change_mark import POLICY_ACTIONS
from devicetrust.store.database import Database
from devicetrust.vault import Vault
from tests.deviceauth.conftest import ACTOR, RESOURCE
from tests.pki.certs import make_csr


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
    device = auth.authenticate_hmac_token(token(), resource=RESOURCE)  # no forget() needed
    assert device.method is AuthMethod.HMAC_TOKEN

    clock.advance(timedelta(hours=1, seconds=1))  # the relaxation lapses: cache or not
    with pytest.raises(AuthRefused) as refused:
        auth.authenticate_hmac_token(token(), resource=RESOURCE)
    assert refused.value.code == "auth.method_not_allowed"


def test_an_unknown_unit_gets_limits_that_admit_nothing(db: Database, clock: FixedClock) -> None:
    limits = PolicyLimits(PolicyService(db, clock), clock)
    assert limits(PhysicalId("6f1c1f4e-3c55-4d7e-9d1e-0f9f3c2b1a00")) is NOTHING


class CountingPolicy(PolicyService):
    """The real service, counting how often a unit's policy is resolved."""

    resolved = 0

    def effective(self, physical_id: str, *, enrollment: str | None = None) -> EffectivePolicy:
        self.resolved += 1
        return super().effective(physical_id, enrollment=enrollment)


def counted_auth(
    db: Database, clock: FixedClock, vault: Vault, pki: PkiService
) -> tuple[CountingPolicy, DeviceAuthService]:
    """Device authentication whose policy limits come from a `CountingPolicy`."""
    counting = CountingPolicy(db, clock)
    auth = DeviceAuthService(
        db,
        clock,
        vault,
        cert_verifier=device_verifier(pki, clock),
        limits_for=PolicyLimits(counting, clock),
    )
    return counting, auth


def certificate_chain(pki: PkiService, hierarchy: Hierarchy, unit: PhysicalIdentity) -> list[bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    issued = pki.issue_from_csr(make_csr(key), unit.physical_id, Profile.DEVICE, actor=ACTOR)
    return [issued.certificate.public_bytes(Encoding.DER), hierarchy.issuing.der]


def test_a_policy_tightened_elsewhere_applies_at_the_next_authentication(
    db: Database,
    clock: FixedClock,
    vault: Vault,
    pki: PkiService,
    hierarchy: Hierarchy,
    unit: PhysicalIdentity,
) -> None:
    """Another process (its own `PolicyService`, nobody calls `forget`) tightens the fleet
    and then the unit's policy: the cached limits are not served once either commits."""
    counting, auth = counted_auth(db, clock, vault, pki)
    chain = certificate_chain(pki, hierarchy, unit)
    auth.authenticate_certificate(chain, source="10.3.0.1")
    auth.authenticate_certificate(chain, source="10.3.0.1")
    assert counting.resolved == 1  # nothing changed: the limits were kept

    elsewhere = PolicyService(db, clock)
    elsewhere.set("fleet", {"allowed_networks": ["10.3.0.0/16"]}, actor=ACTOR)
    with pytest.raises(NetworkNotAllowed):
        auth.authenticate_certificate(chain, source="10.4.0.1")
    auth.authenticate_certificate(chain, source="10.3.0.1")

    elsewhere.set(f"device:{unit.physical_id}", {"auth_methods": ["jwt"]}, actor=ACTOR)
    with pytest.raises(AuthRefused) as refused:
        auth.authenticate_certificate(chain, source="10.3.0.1")
    assert refused.value.code == "auth.method_not_allowed"
    assert counting.resolved == 3  # once per change


def test_a_change_to_another_scope_keeps_the_cached_limits(
    db: Database,
    clock: FixedClock,
    vault: Vault,
    pki: PkiService,
    hierarchy: Hierarchy,
    unit: PhysicalIdentity,
    spare: PhysicalIdentity,
) -> None:
    counting, auth = counted_auth(db, clock, vault, pki)
    chain = certificate_chain(pki, hierarchy, unit)
    auth.authenticate_certificate(chain)
    PolicyService(db, clock).set(
        f"device:{spare.physical_id}", {"auth_methods": ["jwt"]}, actor=ACTOR
    )
    auth.authenticate_certificate(chain)
    assert counting.resolved == 1


def test_policy_change_events_are_all_named_policy_dot() -> None:
    """`policy.change_mark` finds policy changes by their audit action's prefix."""
    low, high = POLICY_ACTIONS
    names = [e.value for e in EventType if e.value.split(".")[0] == "policy"]
    assert names and all(low <= name < high for name in names)


def test_units_without_a_policy_of_their_own_share_their_enrollments_limits(
    db: Database,
    clock: FixedClock,
    vault: Vault,
    pki: PkiService,
    hierarchy: Hierarchy,
    unit: PhysicalIdentity,
    spare: PhysicalIdentity,
) -> None:
    """A unit connecting for the first time reads no policy when another unit of its
    enrollment (here: none) already did; a unit with a policy of its own gets its own."""
    counting, auth = counted_auth(db, clock, vault, pki)
    auth.authenticate_certificate(certificate_chain(pki, hierarchy, unit))
    auth.authenticate_certificate(certificate_chain(pki, hierarchy, spare))
    assert counting.resolved == 1
    PolicyService(db, clock).set(
        f"device:{spare.physical_id}", {"auth_methods": ["jwt"]}, actor=ACTOR
    )
    with pytest.raises(AuthRefused) as refused:
        auth.authenticate_certificate(certificate_chain(pki, hierarchy, spare))
    assert refused.value.code == "auth.method_not_allowed"
    auth.authenticate_certificate(certificate_chain(pki, hierarchy, unit))
    assert counting.resolved == 2

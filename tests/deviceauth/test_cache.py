"""The opt-in cache of token key rows (`cache_ttl`): a change made elsewhere is seen within
the TTL and never later; a change made through the service is seen at once; unknown keys are
never cached. Off by default: then every authentication reads the database. Certificate
authentication never uses it: a revocation or a suspension is seen at the next one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from devicetrust.deviceauth import (
    AuthRefused,
    DeviceAuthService,
    InvalidLimits,
    device_verifier,
    encode_token,
)
from devicetrust.domain import DeviceState, FixedClock
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService
from devicetrust.pki import Hierarchy, PkiService, Profile
from devicetrust.store.database import Database
from devicetrust.vault import Vault
from tests.deviceauth.conftest import ACTOR, RESOURCE
from tests.pki.certs import make_csr

TTL = timedelta(seconds=5)


@pytest.fixture
def cached(
    db: Database, clock: FixedClock, vault: Vault, pki: PkiService, hierarchy: Hierarchy
) -> DeviceAuthService:
    verifier = device_verifier(pki, clock)
    return DeviceAuthService(db, clock, vault, cert_verifier=verifier, cache_ttl=TTL)


def code_of(call: object) -> str:
    assert callable(call)
    with pytest.raises(AuthRefused) as caught:
        call()
    return caught.value.code


def test_a_suspension_elsewhere_is_seen_within_the_ttl(
    cached: DeviceAuthService,
    unit: PhysicalIdentity,
    clock: FixedClock,
    identity: IdentityService,
) -> None:
    with cached.token_keys.rotate(unit.physical_id, actor=ACTOR) as shown:
        token = encode_token(shown.key, unit.physical_id, 1, RESOURCE, clock.now() + TTL * 10)
    cached.authenticate_hmac_token(token, resource=RESOURCE)
    identity.set_state(unit.physical_id, DeviceState.SUSPENDED, actor=ACTOR)
    cached.authenticate_hmac_token(token, resource=RESOURCE)  # still cached: the trade-off
    clock.advance(TTL)
    assert code_of(lambda: cached.authenticate_hmac_token(token, resource=RESOURCE)) == (
        "auth.unit_suspended"
    )


def test_changes_through_the_service_are_seen_at_once(
    cached: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock
) -> None:
    with cached.token_keys.rotate(unit.physical_id, actor=ACTOR) as shown:
        token = encode_token(shown.key, unit.physical_id, 1, RESOURCE, clock.now() + TTL * 10)
        later = encode_token(shown.key, unit.physical_id, 2, RESOURCE, clock.now() + TTL * 10)
    assert code_of(lambda: cached.authenticate_hmac_token(later, resource=RESOURCE)) == (
        "auth.key_unknown"
    )
    cached.authenticate_hmac_token(token, resource=RESOURCE)
    cached.token_keys.revoke(unit.physical_id, 1, actor=ACTOR)
    assert code_of(lambda: cached.authenticate_hmac_token(token, resource=RESOURCE)) == (
        "auth.key_revoked"
    )
    cached.token_keys.rotate(unit.physical_id, actor=ACTOR, key=b"k" * 32).close()
    unknown_before = encode_token(b"k" * 32, unit.physical_id, 2, RESOURCE, clock.now() + TTL)
    assert cached.authenticate_hmac_token(unknown_before, resource=RESOURCE).credential_id == "2"


def test_certificate_authentication_sees_a_revocation_and_a_suspension_at_once(
    cached: DeviceAuthService,
    unit: PhysicalIdentity,
    pki: PkiService,
    hierarchy: Hierarchy,
    identity: IdentityService,
) -> None:
    """Even with `cache_ttl`: the verified path is kept, the status and state never are."""
    key = ec.generate_private_key(ec.SECP256R1())
    issued = pki.issue_from_csr(make_csr(key), unit.physical_id, Profile.DEVICE, actor=ACTOR)
    chain = [issued.certificate.public_bytes(Encoding.DER), hierarchy.issuing.der]
    cached.authenticate_certificate(chain)
    identity.set_state(unit.physical_id, DeviceState.SUSPENDED, actor=ACTOR)
    assert code_of(lambda: cached.authenticate_certificate(chain)) == "auth.unit_suspended"
    identity.set_state(unit.physical_id, DeviceState.ACTIVE, actor=ACTOR)
    cached.authenticate_certificate(chain)
    pki.revoke(issued.serial, "keyCompromise", actor=ACTOR)
    assert code_of(lambda: cached.authenticate_certificate(chain)) == "auth.cert_revoked"


def test_ttl_bounds(db: Database, clock: FixedClock, vault: Vault) -> None:
    with pytest.raises(InvalidLimits):
        DeviceAuthService(db, clock, vault, cache_ttl=timedelta(minutes=2))

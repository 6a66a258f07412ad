"""HMAC identifier tokens end to end over the real service (SQLite and PostgreSQL): a good
token authenticates the unit under its registry identity; every way a token can be wrong is
refused with its own code, audited without the token, and changes nothing else."""

from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest

from devicetrust.deviceauth import (
    PUBLIC_MESSAGE,
    AuthLimits,
    AuthMethod,
    AuthRateLimited,
    AuthRefused,
    DeviceAuthService,
    encode_token,
    new_nonce,
)
from devicetrust.deviceauth.hmac_format import b64url, decode_token, signed_part
from devicetrust.domain import DeviceState, FixedClock, PhysicalId
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService
from devicetrust.provisioning.ratelimit import FailureLimiter
from devicetrust.store.database import Database
from tests.conftest import snapshot_tables
from tests.deviceauth.conftest import ACTOR, NAME, RESOURCE, refusals


def token_for(
    key: bytes | bytearray,
    physical_id: str,
    clock: FixedClock,
    *,
    version: int = 1,
    resource: str = RESOURCE,
    lifetime: timedelta = timedelta(minutes=10),
    nonce: str | None = None,
) -> str:
    return encode_token(key, physical_id, version, resource, clock.now() + lifetime, nonce)


def refused(auth: DeviceAuthService, token: object, resource: str = RESOURCE) -> AuthRefused:
    with pytest.raises(AuthRefused) as caught:
        auth.authenticate_hmac_token(token, resource=resource, entry_point="test")
    assert caught.value.public_problem()[1] == PUBLIC_MESSAGE
    return caught.value


def test_valid_token_authenticates_the_unit_under_its_registry_identity(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock
) -> None:
    with auth.token_keys.rotate(unit.physical_id, actor=ACTOR) as shown:
        token = token_for(shown.key, unit.physical_id, clock, nonce=new_nonce())
    device = auth.authenticate_hmac_token(token, resource=RESOURCE)
    assert (device.physical_id, device.logical_name) == (unit.physical_id, NAME)
    assert device.method is AuthMethod.HMAC_TOKEN
    assert device.credential_id == "1"
    assert device.expires_at == clock.now() + timedelta(minutes=10)
    assert not any(shown.key)  # the shown key was zeroed by the context manager


def test_wrong_key_is_refused_and_audited_without_the_token(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock, db: Database
) -> None:
    auth.token_keys.rotate(unit.physical_id, actor=ACTOR).close()
    token = token_for(b"\x01" * 32, unit.physical_id, clock)
    error = refused(auth, token)
    assert (error.code, error.status) == ("auth.token_invalid", 401)
    [entry] = refusals(db)
    assert entry["code"] == "auth.token_invalid"
    assert entry["method"] == "hmac-token"
    assert entry["claimed_id"] == unit.physical_id
    assert entry["entry_point"] == "test"
    signature = token.rpartition("&sig=")[2]
    assert signature not in repr(entry) and token not in repr(entry)


def test_tampered_fields_do_not_verify(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock
) -> None:
    with auth.token_keys.rotate(unit.physical_id, actor=ACTOR) as shown:
        token = token_for(shown.key, unit.physical_id, clock, resource="a.example.com")
    tampered = token.replace("sr=a.example.com", "sr=b.example.com")
    assert refused(auth, tampered, "b.example.com").code == "auth.token_invalid"


def test_expiry_within_and_beyond_the_clock_skew(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock
) -> None:
    with auth.token_keys.rotate(unit.physical_id, actor=ACTOR) as shown:
        lately = token_for(shown.key, unit.physical_id, clock, lifetime=-timedelta(minutes=1))
        expired = token_for(
            shown.key, unit.physical_id, clock, lifetime=-timedelta(minutes=2, seconds=1)
        )
    auth.authenticate_hmac_token(lately, resource=RESOURCE)  # default skew: 2 minutes
    assert refused(auth, expired).code == "auth.token_expired"


def test_lifetime_over_the_maximum(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock
) -> None:
    with auth.token_keys.rotate(unit.physical_id, actor=ACTOR) as shown:
        token = token_for(shown.key, unit.physical_id, clock, lifetime=timedelta(hours=2))
    assert refused(auth, token).code == "auth.token_lifetime_exceeded"


def test_a_nonce_is_accepted_once(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock, db: Database
) -> None:
    with auth.token_keys.rotate(unit.physical_id, actor=ACTOR) as shown:
        token = token_for(shown.key, unit.physical_id, clock, nonce=new_nonce())
    auth.authenticate_hmac_token(token, resource=RESOURCE)
    assert refused(auth, token).code == "auth.token_replayed"
    # Once the token can no longer be accepted, its nonce is forgotten.
    clock.advance(timedelta(minutes=13))
    assert auth.purge_expired() == 1
    assert refused(auth, token).code == "auth.token_expired"


def test_limits_can_require_single_use_tokens(
    db: Database, clock: FixedClock, vault: object, unit: PhysicalIdentity
) -> None:
    strict = DeviceAuthService(
        db,
        clock,
        vault,
        limits_for=lambda _pid: AuthLimits(require_nonce=True),  # type: ignore[arg-type]
    )
    with strict.token_keys.rotate(unit.physical_id, actor=ACTOR) as shown:
        token = token_for(shown.key, unit.physical_id, clock)
    assert refused(strict, token).code == "auth.nonce_required"


def test_wrong_resource(auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock) -> None:
    with auth.token_keys.rotate(unit.physical_id, actor=ACTOR) as shown:
        token = token_for(shown.key, unit.physical_id, clock)
    assert refused(auth, token, "api.example.com").code == "auth.token_wrong_audience"


def test_unknown_key_version_and_unknown_unit(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock, db: Database
) -> None:
    with auth.token_keys.rotate(unit.physical_id, actor=ACTOR) as shown:
        version_two = token_for(shown.key, unit.physical_id, clock, version=2)
        stranger = token_for(shown.key, "c2c38155-b0d2-48b6-82fd-22fe3b316224", clock)
    assert refused(auth, version_two).code == "auth.key_unknown"
    assert refused(auth, stranger).code == "auth.key_unknown"
    assert [e["claimed_id"] for e in refusals(db)] == [
        unit.physical_id,
        "c2c38155-b0d2-48b6-82fd-22fe3b316224",
    ]


def test_rotation_accepts_both_keys_during_the_overlap_only(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock
) -> None:
    old = auth.token_keys.rotate(unit.physical_id, actor=ACTOR)
    new = auth.token_keys.rotate(unit.physical_id, actor=ACTOR, overlap=timedelta(hours=1))
    assert new.version.version == 2
    for shown in (old, new):
        token = token_for(shown.key, unit.physical_id, clock, version=shown.version.version)
        assert auth.authenticate_hmac_token(token, resource=RESOURCE).credential_id == str(
            shown.version.version
        )
    clock.advance(timedelta(hours=1))
    stale = token_for(old.key, unit.physical_id, clock, version=1)
    assert refused(auth, stale).code == "auth.key_retired"
    fresh = token_for(new.key, unit.physical_id, clock, version=2)
    assert auth.authenticate_hmac_token(fresh, resource=RESOURCE).credential_id == "2"
    assert auth.purge_expired() == 1
    versions = auth.token_keys.list_versions(unit.physical_id)
    assert [(v.version, v.destroyed) for v in versions] == [(1, True), (2, False)]
    old.close()
    new.close()


def test_revoked_version_is_refused_at_once(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock
) -> None:
    with auth.token_keys.rotate(unit.physical_id, actor=ACTOR) as shown:
        token = token_for(shown.key, unit.physical_id, clock)
    auth.token_keys.revoke(unit.physical_id, 1, actor=ACTOR)
    assert refused(auth, token).code == "auth.key_revoked"


@pytest.mark.parametrize(
    ("state", "code"),
    [
        (DeviceState.SUSPENDED, "auth.unit_suspended"),
        (DeviceState.QUARANTINED, "auth.unit_quarantined"),
        (DeviceState.DECOMMISSIONED, "auth.unit_decommissioned"),
    ],
)
def test_units_out_of_service_are_refused_whatever_they_present(
    auth: DeviceAuthService,
    unit: PhysicalIdentity,
    clock: FixedClock,
    identity: IdentityService,
    state: DeviceState,
    code: str,
) -> None:
    with auth.token_keys.rotate(unit.physical_id, actor=ACTOR) as shown:
        token = token_for(shown.key, unit.physical_id, clock)
    identity.set_state(unit.physical_id, state, actor=ACTOR)
    error = refused(auth, token)
    assert (error.code, error.status) == (code, 403)
    assert error.public_problem() == (403, PUBLIC_MESSAGE)


def test_replaced_unit_is_refused_and_the_new_one_takes_the_name(
    auth: DeviceAuthService,
    unit: PhysicalIdentity,
    spare: PhysicalIdentity,
    clock: FixedClock,
    identity: IdentityService,
) -> None:
    with auth.token_keys.rotate(unit.physical_id, actor=ACTOR) as old_key:
        old_token = token_for(old_key.key, unit.physical_id, clock)
    with auth.token_keys.rotate(spare.physical_id, actor=ACTOR) as new_key:
        new_token = token_for(new_key.key, spare.physical_id, clock)
    assert auth.authenticate_hmac_token(new_token, resource=RESOURCE).logical_name is None
    identity.replace(NAME, spare.physical_id, actor=ACTOR)
    assert refused(auth, old_token).code == "auth.unit_decommissioned"
    device = auth.authenticate_hmac_token(new_token, resource=RESOURCE)
    assert (device.physical_id, device.logical_name) == (spare.physical_id, NAME)


def test_method_not_allowed_by_the_units_limits(
    db: Database, clock: FixedClock, vault: object, unit: PhysicalIdentity
) -> None:
    only_jwt = AuthLimits(methods=frozenset({AuthMethod.JWT}))
    service = DeviceAuthService(db, clock, vault, limits_for=lambda _pid: only_jwt)  # type: ignore[arg-type]
    with service.token_keys.rotate(unit.physical_id, actor=ACTOR) as shown:
        token = token_for(shown.key, unit.physical_id, clock)
    error = refused(service, token)
    assert (error.code, error.status) == ("auth.method_not_allowed", 403)


def test_a_refusal_changes_nothing_but_the_audit_log(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock, db: Database
) -> None:
    with auth.token_keys.rotate(unit.physical_id, actor=ACTOR) as shown:
        token = token_for(shown.key, unit.physical_id, clock, nonce=new_nonce())
    before = snapshot_tables(db)
    for bad in (token.replace("&n=", "&n=x"), token[:-2] + "AA", "garbage", None):
        refused(auth, bad)
    after = snapshot_tables(db)
    for table in before:
        if table not in ("audit_log", "audit_head"):
            assert after[table] == before[table], table
    assert len(after["audit_log"]) == len(before["audit_log"]) + 4


def test_openssl_computed_token_is_accepted(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock
) -> None:
    """The MAC computed by a tool we did not write (`openssl dgst -mac HMAC`)."""
    with auth.token_keys.rotate(unit.physical_id, actor=ACTOR) as shown:
        key_hex = shown.key.hex()
    expires = int((clock.now() + timedelta(minutes=5)).timestamp())
    signed = signed_part(unit.physical_id, 1, RESOURCE, expires, "openssl-nonce-0001")
    mac = subprocess.run(
        ["openssl", "dgst", "-sha256", "-mac", "HMAC", "-macopt", f"hexkey:{key_hex}", "-binary"],
        input=signed.encode(),
        capture_output=True,
        check=True,
    ).stdout
    token = f"{signed}&sig={b64url(mac)}"
    assert decode_token(token).mac == mac
    device = auth.authenticate_hmac_token(token, resource=RESOURCE)
    assert device.physical_id == PhysicalId(unit.physical_id)


def test_failures_from_one_source_are_rate_limited_before_any_work(
    db: Database, clock: FixedClock, vault: object, unit: PhysicalIdentity
) -> None:
    limiter = FailureLimiter(clock, burst=3, refill_per_minute=1)
    service = DeviceAuthService(db, clock, vault, failure_limiter=limiter)  # type: ignore[arg-type]
    with service.token_keys.rotate(unit.physical_id, actor=ACTOR) as shown:
        good = token_for(shown.key, unit.physical_id, clock)
    bad = token_for(b"\x02" * 32, unit.physical_id, clock)
    for _ in range(3):
        with pytest.raises(AuthRefused) as caught:
            service.authenticate_hmac_token(bad, resource=RESOURCE, source="10.0.0.9")
        assert caught.value.code == "auth.token_invalid"
    audited = len(refusals(db))
    with pytest.raises(AuthRateLimited) as limited:
        service.authenticate_hmac_token(good, resource=RESOURCE, source="10.0.0.9")
    assert (limited.value.status, limited.value.retry_after) == (429, 60)
    assert len(refusals(db)) == audited  # refused before any work, nothing written
    # Another source is not affected; the source recovers as its budget refills.
    service.authenticate_hmac_token(good, resource=RESOURCE, source="10.0.0.10")
    clock.advance(timedelta(minutes=1))
    service.authenticate_hmac_token(good, resource=RESOURCE, source="10.0.0.9")

"""Token key versions at rest and in their life: sealed (never clear on disk), adopted from
a symmetric-key enrollment (group-derived or individual), rotated and revoked with their
audit entries and events, and session keys keyed from them."""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import timedelta

import pytest
from sqlalchemy import select

from devicetrust.deviceauth import (
    DeviceAuthService,
    DeviceKeyNotFound,
    InvalidDeviceKey,
    InvalidLimits,
    SessionKeyRatchet,
    TokenKeyOrigin,
    encode_token,
)
from devicetrust.domain import DeviceState, FixedClock
from devicetrust.domain.errors import ConfigurationError, Conflict
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService
from devicetrust.provisioning import Allocation, AllocationPolicy, Enrollments
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow
from devicetrust.store.models_device_auth import DeviceTokenKeyRow
from devicetrust.vault import Vault
from tests.conftest import snapshot_tables
from tests.deviceauth.conftest import ACTOR, NAME, RESOURCE, event_types

MANUAL = Allocation(AllocationPolicy.MANUAL)


def test_keys_are_sealed_at_rest_and_never_audited(
    auth: DeviceAuthService, unit: PhysicalIdentity, db: Database
) -> None:
    given = os.urandom(32)
    shown = auth.token_keys.rotate(unit.physical_id, actor=ACTOR, key=given)
    assert shown.version.origin is TokenKeyOrigin.GIVEN
    dump = repr(snapshot_tables(db)).encode()
    assert given not in dump and given.hex().encode() not in dump
    with db.read() as session:
        row = session.execute(select(DeviceTokenKeyRow)).scalar_one()
        audit = session.execute(select(AuditEntryRow.details)).scalars().all()
    assert row.sealed_key is not None and given not in row.sealed_key
    assert all(given.hex() not in repr(details) for details in audit)
    assert event_types(db)[-1] == "device_credential.added"
    shown.close()
    assert shown.key == bytearray(32)


def test_a_sealed_key_does_not_open_for_another_version(
    auth: DeviceAuthService, unit: PhysicalIdentity, db: Database, clock: FixedClock
) -> None:
    """The vault's aad names unit and version: a row copied over another does not verify."""
    first = auth.token_keys.rotate(unit.physical_id, actor=ACTOR)
    second = auth.token_keys.rotate(unit.physical_id, actor=ACTOR, overlap=timedelta(hours=1))
    with db.transaction() as session:
        rows = session.execute(select(DeviceTokenKeyRow).order_by(DeviceTokenKeyRow.version))
        one, two = rows.scalars().all()
        two.sealed_key = one.sealed_key
    token = encode_token(
        first.key, unit.physical_id, 2, RESOURCE, clock.now() + timedelta(minutes=1)
    )
    with pytest.raises(ConfigurationError) as caught:
        auth.authenticate_hmac_token(token, resource=RESOURCE)
    assert caught.value.code == "vault.unseal_failed"  # a server fault, not a refusal
    first.close()
    second.close()


def test_group_enrollment_key_is_adopted_as_the_derived_device_key(
    auth: DeviceAuthService, unit: PhysicalIdentity, db: Database, clock: FixedClock, vault: Vault
) -> None:
    group = Enrollments(db, clock, vault).create_symmetric_group("line-03", MANUAL, actor=ACTOR)
    version = auth.token_keys.adopt_enrollment_key(
        unit.physical_id, actor=ACTOR, enrollment="line-03"
    )
    assert (version.version, version.origin) == (1, TokenKeyOrigin.ENROLLMENT)
    # The device computes its key from what the factory flashed: HMAC(group key, its id).
    device_key = hmac.digest(bytes(group.key), unit.physical_id.encode(), hashlib.sha256)
    token = encode_token(
        device_key, unit.physical_id, 1, RESOURCE, clock.now() + timedelta(minutes=1)
    )
    assert auth.authenticate_hmac_token(token, resource=RESOURCE).logical_name == NAME
    group.key[:] = bytes(32)


def test_individual_enrollment_key_is_found_without_naming_it(
    auth: DeviceAuthService, unit: PhysicalIdentity, db: Database, clock: FixedClock, vault: Vault
) -> None:
    shown = Enrollments(db, clock, vault).create_individual_key(
        unit.physical_id, MANUAL, actor=ACTOR
    )
    auth.token_keys.adopt_enrollment_key(unit.physical_id, actor=ACTOR)
    token = encode_token(
        shown.key, unit.physical_id, 1, RESOURCE, clock.now() + timedelta(minutes=1)
    )
    assert auth.authenticate_hmac_token(token, resource=RESOURCE).credential_id == "1"


def test_adopting_without_a_symmetric_enrollment_is_refused(
    auth: DeviceAuthService,
    spare: PhysicalIdentity,
    unit: PhysicalIdentity,
    db: Database,
    clock: FixedClock,
    vault: Vault,
) -> None:
    with pytest.raises(DeviceKeyNotFound):
        auth.token_keys.adopt_enrollment_key(spare.physical_id, actor=ACTOR)
    Enrollments(db, clock, vault).create_individual_key(unit.physical_id, MANUAL, actor=ACTOR)
    with pytest.raises(InvalidDeviceKey):
        auth.token_keys.adopt_enrollment_key(
            spare.physical_id, actor=ACTOR, enrollment=f"{unit.physical_id}/symmetric-key"
        )


def test_rotation_and_revocation_are_audited_and_evented(
    auth: DeviceAuthService, unit: PhysicalIdentity, db: Database
) -> None:
    auth.token_keys.rotate(unit.physical_id, actor=ACTOR).close()
    auth.token_keys.rotate(unit.physical_id, actor=ACTOR, overlap=timedelta(0)).close()
    auth.token_keys.revoke(unit.physical_id, 2, actor=ACTOR)
    auth.token_keys.revoke(unit.physical_id, 2, actor=ACTOR)  # idempotent: no second event
    assert event_types(db)[-3:] == [
        "device_credential.added",
        "device_credential.added",
        "device_credential.revoked",
    ]
    with db.read() as session:
        details = (
            session.execute(
                select(AuditEntryRow.details)
                .where(AuditEntryRow.action.like("device_credential.%"))
                .order_by(AuditEntryRow.seq)
            )
            .scalars()
            .all()
        )
    assert details[1]["retiring"] == [
        {"version": 1, "retires_at": details[1]["retiring"][0]["retires_at"]}
    ]
    versions = auth.token_keys.list_versions(unit.physical_id)
    assert [(v.version, v.revoked_at is not None, v.destroyed) for v in versions] == [
        (1, False, False),
        (2, True, True),
    ]


def test_bad_rotations(
    auth: DeviceAuthService, unit: PhysicalIdentity, identity: IdentityService
) -> None:
    with pytest.raises(InvalidDeviceKey):
        auth.token_keys.rotate(unit.physical_id, actor=ACTOR, key=b"short")
    with pytest.raises(InvalidLimits):
        auth.token_keys.rotate(unit.physical_id, actor=ACTOR, overlap=timedelta(days=31))
    with pytest.raises(DeviceKeyNotFound):
        auth.token_keys.revoke(unit.physical_id, 7, actor=ACTOR)
    identity.set_state(unit.physical_id, DeviceState.DECOMMISSIONED, actor=ACTOR)
    with pytest.raises(Conflict) as caught:
        auth.token_keys.rotate(unit.physical_id, actor=ACTOR)
    assert caught.value.code == "deviceauth.unit_not_live"
    assert auth.token_keys.list_versions(unit.physical_id) == []


def test_server_and_device_derive_the_same_session_keys(
    auth: DeviceAuthService, unit: PhysicalIdentity
) -> None:
    salt = os.urandom(16)
    with auth.token_keys.rotate(unit.physical_id, actor=ACTOR) as shown:
        device = SessionKeyRatchet(shown.key, salt=salt, identity=unit.physical_id, session_id="s1")
    server = auth.token_keys.open_session(unit.physical_id, session_id="s1", salt=salt)
    for _ in range(3):
        assert device.key_copy() == server.key_copy()
        device.advance()
        server.advance()
    other = auth.token_keys.open_session(unit.physical_id, session_id="s2", salt=salt)
    assert other.key_copy() != server.key_copy()
    auth.token_keys.revoke(unit.physical_id, 1, actor=ACTOR)
    with pytest.raises(DeviceKeyNotFound):
        auth.token_keys.open_session(unit.physical_id, session_id="s3", salt=salt)

"""Operator API keys: tokens are shown once, stored hashed, refused without an oracle."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select

from devicetrust.auth import ApiKey, ApiKeyService, Scope, has_scope
from devicetrust.domain import Conflict, FixedClock, InvalidInput, NotFound, Unauthorized
from devicetrust.store.database import Database
from devicetrust.store.models import ApiKeyRow, AuditEntryRow, OutboxRow


@pytest.fixture
def keys(db: Database, clock: FixedClock) -> ApiKeyService:
    return ApiKeyService(db, clock)


def test_token_format_and_only_the_hash_is_stored(keys: ApiKeyService, db: Database) -> None:
    key, token = keys.create("ci pipeline", [Scope.IDENTITY_READ], actor="admin")
    prefix, key_id, secret = token.split("_", 2)
    assert prefix == "dt" and key_id == key.key_id and len(key_id) == 12
    assert len(secret) == 43  # 32 bytes, unpadded base64url
    with db.transaction() as session:
        row = session.get(ApiKeyRow, key.key_id)
        assert row is not None
        assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in json.dumps([row.id, row.name, row.scopes, row.secret_hash])


def test_authenticate_returns_the_key(keys: ApiKeyService) -> None:
    key, token = keys.create("reader", ["identity:read", "audit:read"], actor="admin")
    found = keys.authenticate(token)
    assert found == key
    assert found.scopes == {Scope.IDENTITY_READ, Scope.AUDIT_READ}
    assert found.actor == f"apikey:{key.key_id}"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret
        lambda t: "dt_" + "0" * 12 + t[15:],  # unknown key id
        lambda t: t.replace("dt_", "xx_", 1),  # wrong prefix
        lambda t: t + "extra",  # wrong length
        lambda t: "garbage",
        lambda t: "dt_" + "é" * 12 + t[15:],  # non-ASCII
    ],
)
def test_every_wrong_token_gets_the_same_refusal(keys: ApiKeyService, mangle: object) -> None:
    _, token = keys.create("k", [Scope.ADMIN], actor="admin")
    assert callable(mangle)
    with pytest.raises(Unauthorized) as err:
        keys.authenticate(mangle(token))
    assert err.value.code == "auth.invalid_key"
    assert err.value.message == "invalid API key"
    assert err.value.details == {}


def test_missing_token(keys: ApiKeyService) -> None:
    for empty in (None, ""):
        with pytest.raises(Unauthorized) as err:
            keys.authenticate(empty)
        assert err.value.code == "auth.missing_key"


def test_revoked_key_is_refused_and_revocation_is_audited(
    keys: ApiKeyService, db: Database
) -> None:
    key, token = keys.create("temp", [Scope.WEBHOOK_READ], actor="admin")
    revoked = keys.revoke(key.key_id, actor="apikey:boss")
    assert revoked.revoked_at is not None and not has_scope(revoked, Scope.WEBHOOK_READ)
    with pytest.raises(Unauthorized) as err:
        keys.authenticate(token)
    assert err.value.code == "auth.invalid_key"
    with pytest.raises(Conflict):
        keys.revoke(key.key_id, actor="apikey:boss")
    with db.transaction() as session:
        audit = session.execute(select(AuditEntryRow).order_by(AuditEntryRow.seq)).scalars().all()
        events = session.execute(select(OutboxRow.type).order_by(OutboxRow.id)).scalars().all()
    assert [a.action for a in audit] == ["api_key.created", "api_key.revoked"]
    assert audit[1].actor == "apikey:boss" and audit[1].subject == f"apikey:{key.key_id}"
    assert events == ["api_key.created", "api_key.revoked"]


def test_the_secret_never_reaches_audit_or_outbox(keys: ApiKeyService, db: Database) -> None:
    _, token = keys.create("secretive", [Scope.ADMIN], actor="admin")
    secret = token.split("_", 2)[2]
    with db.transaction() as session:
        audit = session.execute(select(AuditEntryRow)).scalars().all()
        outbox = session.execute(select(OutboxRow)).scalars().all()
        dumped = json.dumps([a.details for a in audit] + [o.payload for o in outbox])
    assert secret not in dumped and token not in dumped
    assert json.loads(dumped)[0]["scopes"] == ["admin"]


def test_admin_implies_every_scope(keys: ApiKeyService) -> None:
    admin, _ = keys.create("root", [Scope.ADMIN], actor="admin")
    reader, _ = keys.create("reader", [Scope.IDENTITY_READ], actor="admin")
    assert all(has_scope(admin, scope) for scope in Scope)
    assert has_scope(reader, Scope.IDENTITY_READ)
    assert not has_scope(reader, Scope.IDENTITY_WRITE)
    assert not has_scope(reader, Scope.ADMIN)


@pytest.mark.parametrize(
    ("name", "scopes", "code"),
    [
        ("", [Scope.ADMIN], "auth.invalid_key_name"),
        ("x" * 129, [Scope.ADMIN], "auth.invalid_key_name"),
        ("bad\nname", [Scope.ADMIN], "auth.invalid_key_name"),
        ("ok", [], "auth.no_scopes"),
        ("ok", ["root"], "auth.invalid_scope"),
    ],
)
def test_bad_creation_input_changes_nothing(
    keys: ApiKeyService, db: Database, name: str, scopes: list[str], code: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        keys.create(name, scopes, actor="admin")
    assert err.value.code == code
    assert keys.list() == []
    with db.transaction() as session:
        assert session.execute(select(AuditEntryRow)).first() is None


def test_list_get_and_unknown_ids(keys: ApiKeyService) -> None:
    a, _ = keys.create("a", [Scope.ADMIN], actor="admin")
    b, _ = keys.create("b", [Scope.AUDIT_READ], actor="admin")
    keys.revoke(b.key_id, actor="admin")
    assert {k.key_id for k in keys.list()} == {a.key_id, b.key_id}
    assert [k.key_id for k in keys.list(include_revoked=False)] == [a.key_id]
    assert keys.get(a.key_id) == a
    with pytest.raises(NotFound):
        keys.get("0" * 12)
    with pytest.raises(NotFound):
        keys.revoke("0" * 12, actor="admin")
    with pytest.raises(InvalidInput):
        keys.revoke("not-a-key-id", actor="admin")


def test_to_json_has_no_hash(keys: ApiKeyService) -> None:
    key, token = keys.create("json", [Scope.AUDIT_READ], actor="admin")
    out = key.to_json()
    assert set(out) == {"key_id", "name", "scopes", "created_at", "created_by", "revoked_at"}
    assert token.split("_", 2)[2] not in json.dumps(out)
    assert isinstance(key, ApiKey)

"""Operator API keys: creation, authentication, listing and revocation.

A token reads `dt_<key_id>_<secret>`: `key_id` is 12 random lowercase hex characters that
name the key (safe to log and audit), `secret` is 32 CSPRNG bytes in unpadded base64url.
Only SHA-256 of the secret is stored: a fast hash is enough for a full-entropy secret (no
dictionary to try), and it is compared in constant time.

Never does this module store, log, audit or return the secret after `create` hands it out
once. A refused token tells the caller only "invalid API key"; which part was wrong (unknown
id, wrong secret, revoked key, malformed token) goes to the log with the key id, never the
secret.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import Conflict, InvalidInput, NotFound, Unauthorized
from devicetrust.domain.events import EventType
from devicetrust.store.database import Database
from devicetrust.store.journal import record
from devicetrust.store.models import ApiKeyRow

_log = logging.getLogger(__name__)

TOKEN_PREFIX = "dt"  # noqa: S105 - a public marker, not a secret
KEY_ID_LENGTH = 12
SECRET_BYTES = 32
MAX_NAME_LENGTH = 128
# dt_ + 12 + _ + 43 characters; anything much longer is not one of ours.
MAX_TOKEN_LENGTH = 128
_KEY_ID_RE = re.compile(rf"^[0-9a-f]{{{KEY_ID_LENGTH}}}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
# Compared against when the key id is unknown, so that an unknown id and a wrong secret
# take the same path (no timing oracle for which key ids exist).
_DUMMY_HASH = hashlib.sha256(b"devicetrust-no-such-key").hexdigest()


class Scope(enum.StrEnum):
    """What an API key may do. `admin` implies every other scope."""

    IDENTITY_READ = "identity:read"
    IDENTITY_WRITE = "identity:write"
    WEBHOOK_READ = "webhook:read"
    WEBHOOK_WRITE = "webhook:write"
    AUDIT_READ = "audit:read"
    PKI_READ = "pki:read"  # CAs, issued certificates, chains
    PKI_WRITE = "pki:write"  # create or import CAs, issue and revoke certificates
    # Enrollments, the pending queue and approvals: who may get a logical identity. Not
    # implied by identity:*, which predates them (keys that need both hold both).
    PROVISIONING_READ = "provisioning:read"
    PROVISIONING_WRITE = "provisioning:write"
    POLICY_READ = "policy:read"  # security policy, relaxations, the posture report
    POLICY_WRITE = "policy:write"  # tighten the policy, relax it (reason, expiry), revoke
    # Device credentials: HMAC token key versions and JWT public keys (list / rotate, adopt,
    # register, revoke). Their own scopes: a new token key is a secret shown once.
    CREDENTIAL_READ = "credential:read"
    CREDENTIAL_WRITE = "credential:write"
    # The data plane: devices' diagnostics and telemetry, feedback status (read); sending
    # feedback to devices (write).
    DATA_READ = "data:read"
    DATA_WRITE = "data:write"
    ADMIN = "admin"


_KNOWN_SCOPES = frozenset(scope.value for scope in Scope)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An operator API key as the registry knows it: never its secret, nor the hash."""

    key_id: str
    name: str
    scopes: frozenset[Scope]
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None

    @property
    def actor(self) -> str:
        """How actions taken with this key are attributed in the audit log."""
        return f"apikey:{self.key_id}"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "scopes": sorted(scope.value for scope in self.scopes),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def has_scope(key: ApiKey, scope: Scope) -> bool:
    """Whether `key` may act with `scope` (a revoked key may do nothing)."""
    if key.revoked:
        return False
    return Scope.ADMIN in key.scopes or scope in key.scopes


def parse_scopes(raw: Iterable[Scope | str]) -> frozenset[Scope]:
    """Validate a scope list; an empty list is refused (a key that may do nothing is a
    mistake, not a policy)."""
    scopes: set[Scope] = set()
    for item in raw:
        try:
            scopes.add(Scope(item))
        except ValueError as exc:
            known = ", ".join(s.value for s in Scope)
            raise InvalidInput(
                "auth.invalid_scope", f"unknown scope {str(item)[:64]!r}; known: {known}"
            ) from exc
    if not scopes:
        raise InvalidInput("auth.no_scopes", "an API key needs at least one scope")
    return frozenset(scopes)


def parse_key_id(value: str) -> str:
    if not isinstance(value, str) or not _KEY_ID_RE.match(value):
        raise InvalidInput(
            "auth.invalid_key_id", f"an API key id is {KEY_ID_LENGTH} lowercase hex characters"
        )
    return value


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _new_secret() -> str:
    raw = bytearray(secrets.token_bytes(SECRET_BYTES))
    try:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    finally:
        raw[:] = bytes(len(raw))  # the clear bytes do not outlive this call


def _split_token(token: str) -> tuple[str, str] | None:
    """(key_id, secret) of a well-formed token, else None."""
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        return None
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    _, key_id, secret = parts
    if not _KEY_ID_RE.match(key_id) or not _SECRET_RE.match(secret):
        return None
    return key_id, secret


def _to_key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        key_id=row.id,
        name=row.name,
        # A scope this version does not know grants nothing (fail closed).
        scopes=frozenset(Scope(s) for s in row.scopes if s in _KNOWN_SCOPES),
        created_at=row.created_at,
        created_by=row.created_by,
        revoked_at=row.revoked_at,
    )


class ApiKeyService:
    """Creates, checks and revokes operator API keys; each change is audited."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def create(self, name: str, scopes: Iterable[Scope | str], *, actor: str) -> tuple[ApiKey, str]:
        """Make a key; return it and its token. The token is shown this once and never stored."""
        clean_name = name.strip() if isinstance(name, str) else ""
        if not 1 <= len(clean_name) <= MAX_NAME_LENGTH or not clean_name.isprintable():
            raise InvalidInput(
                "auth.invalid_key_name",
                f"an API key name is 1-{MAX_NAME_LENGTH} printable characters",
            )
        granted = parse_scopes(scopes)
        key_id = secrets.token_hex(KEY_ID_LENGTH // 2)
        secret = _new_secret()
        now = self._clock.now()
        with self._db.transaction() as session:
            row = ApiKeyRow(
                id=key_id,
                name=clean_name,
                secret_hash=_hash_secret(secret),
                scopes=sorted(s.value for s in granted),
                created_at=now,
                created_by=actor,
                revoked_at=None,
            )
            session.add(row)
            record(
                session,
                at=now,
                actor=actor,
                event_type=EventType.API_KEY_CREATED,
                subject=f"apikey:{key_id}",
                payload={"key_id": key_id, "name": clean_name, "scopes": row.scopes},
            )
            key = _to_key(row)
        return key, f"{TOKEN_PREFIX}_{key_id}_{secret}"

    def authenticate(self, token: str | None) -> ApiKey:
        """The live key a token belongs to; `Unauthorized` otherwise, with one message for
        every kind of wrong token."""
        if not token:
            raise Unauthorized("auth.missing_key", "an API key is required")
        parts = _split_token(token)
        if parts is None:
            return self._refuse("malformed token", None)
        key_id, secret = parts
        with self._db.read() as session:
            row = session.get(ApiKeyRow, key_id)
            stored = row.secret_hash if row is not None else _DUMMY_HASH
            matches = hmac.compare_digest(stored, _hash_secret(secret))
            if row is None:
                return self._refuse("unknown key id", key_id)
            if not matches:
                return self._refuse("wrong secret", key_id)
            if row.revoked_at is not None:
                return self._refuse("revoked key", key_id)
            return _to_key(row)

    @staticmethod
    def _refuse(reason: str, key_id: str | None) -> ApiKey:
        _log.warning("api key refused", extra={"reason": reason, "key_id": key_id})
        raise Unauthorized("auth.invalid_key", "invalid API key")

    def get(self, key_id: str) -> ApiKey:
        kid = parse_key_id(key_id)
        with self._db.read() as session:
            row = session.get(ApiKeyRow, kid)
            if row is None:
                raise NotFound("auth.key_not_found", f"no API key {kid}", key_id=kid)
            return _to_key(row)

    def list(self, *, include_revoked: bool = True) -> list[ApiKey]:
        stmt = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        if not include_revoked:
            stmt = stmt.where(ApiKeyRow.revoked_at.is_(None))
        with self._db.read() as session:
            return [_to_key(row) for row in session.execute(stmt).scalars()]

    def revoke(self, key_id: str, *, actor: str) -> ApiKey:
        """Revoke a key at once: the next request made with it is refused."""
        kid = parse_key_id(key_id)
        now = self._clock.now()
        with self._db.transaction() as session:
            row = session.execute(
                select(ApiKeyRow).where(ApiKeyRow.id == kid).with_for_update()
            ).scalar_one_or_none()
            if row is None:
                raise NotFound("auth.key_not_found", f"no API key {kid}", key_id=kid)
            if row.revoked_at is not None:
                raise Conflict("auth.key_already_revoked", f"API key {kid} is already revoked")
            row.revoked_at = now
            record(
                session,
                at=now,
                actor=actor,
                event_type=EventType.API_KEY_REVOKED,
                subject=f"apikey:{kid}",
                payload={"key_id": kid, "name": row.name},
            )
            return _to_key(row)

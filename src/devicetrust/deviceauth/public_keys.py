"""Public keys units sign their JWTs with (the Google Cloud IoT Core model): registered by an
operator for a unit, at most `MAX_KEYS_PER_UNIT` active at once, revocable, optionally
expiring. A key's id (the JWT `kid`) is the SHA-256 of its DER SubjectPublicKeyInfo, in hex,
so a device computes it from its own key; a key belongs to one unit only.

Only P-256 (ES256) and Ed25519 (EdDSA) keys are accepted: the key's type pins the algorithm
a token signed with it may name. Every change is one transaction with its audit entry and
`device_credential.*` event. Public keys are not secret; nothing here handles a private key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
    load_pem_public_key,
)
from sqlalchemy import func, select

from devicetrust.deviceauth.errors import DeviceKeyExists, DeviceKeyNotFound, InvalidDeviceKey
from devicetrust.deviceauth.records import DevicePublicKey, JwtAlgorithm
from devicetrust.domain.clock import Clock
from devicetrust.domain.events import EventType
from devicetrust.domain.ids import PhysicalId, parse_physical_id
from devicetrust.store.database import Database
from devicetrust.store.journal import record
from devicetrust.store.models_device_auth import DevicePublicKeyRow
from devicetrust.store.registry import physical_row

MAX_KEYS_PER_UNIT = 3
MAX_KEY_TEXT = 4096

VerificationKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def algorithm_for(key: object) -> JwtAlgorithm:
    """The one JWS algorithm a key of this type verifies (RFC 7518 §3.4, RFC 8037)."""
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return JwtAlgorithm.ES256
    if isinstance(key, ed25519.Ed25519PublicKey):
        return JwtAlgorithm.EDDSA
    raise InvalidDeviceKey("device JWT keys are P-256 (ES256) or Ed25519 (EdDSA)")


def key_id_of(key: VerificationKey) -> str:
    spki = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def parse_public_key(data: str | bytes) -> VerificationKey:
    """A P-256 or Ed25519 public key from PEM or DER SubjectPublicKeyInfo."""
    raw = data.encode("ascii", "replace") if isinstance(data, str) else bytes(data)
    if not 0 < len(raw) <= MAX_KEY_TEXT:
        raise InvalidDeviceKey(f"a public key is at most {MAX_KEY_TEXT} bytes")
    try:
        key = (
            load_pem_public_key(raw)
            if raw.lstrip().startswith(b"-----")
            else (load_der_public_key(raw))
        )
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidDeviceKey("not a PEM or DER SubjectPublicKeyInfo public key") from exc
    algorithm_for(key)
    assert isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey)
    return key


@lru_cache(maxsize=4096)
def load_registered(pem: str) -> VerificationKey:
    """A registered key, parsed once per process (a pure function of the stored text)."""
    return parse_public_key(pem)


def _to_record(row: DevicePublicKeyRow) -> DevicePublicKey:
    return DevicePublicKey(
        key_id=row.key_id,
        physical_id=PhysicalId(row.physical_id),
        algorithm=JwtAlgorithm(row.algorithm),
        public_key_pem=row.public_key_pem,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


class DevicePublicKeys:
    def __init__(
        self, db: Database, clock: Clock, *, on_change: Callable[[], None] | None = None
    ) -> None:
        self._db = db
        self._clock = clock
        self._on_change = on_change  # e.g. the authenticators' caches, cleared on a revocation

    def register(
        self,
        physical_id: str,
        public_key: str | bytes,
        *,
        actor: str,
        expires_at: datetime | None = None,
    ) -> DevicePublicKey:
        pid = parse_physical_id(physical_id)
        key = parse_public_key(public_key)
        if expires_at is not None and expires_at.tzinfo is None:
            raise InvalidDeviceKey("expires_at needs a timezone")
        pem = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")
        key_id = key_id_of(key)
        now = self._clock.now()
        with self._db.transaction() as session:
            physical_row(session, pid, lock=True)  # serialises registrations of one unit
            if session.get(DevicePublicKeyRow, key_id) is not None:
                raise DeviceKeyExists("that public key is already registered", key_id=key_id)
            active = session.execute(
                select(func.count()).where(
                    DevicePublicKeyRow.physical_id == pid,
                    DevicePublicKeyRow.revoked_at.is_(None),
                )
            ).scalar_one()
            if active >= MAX_KEYS_PER_UNIT:
                raise DeviceKeyExists(
                    f"a unit has at most {MAX_KEYS_PER_UNIT} active public keys; revoke one",
                    physical_id=pid,
                )
            row = DevicePublicKeyRow(
                key_id=key_id,
                physical_id=pid,
                algorithm=algorithm_for(key).value,
                public_key_pem=pem,
                created_at=now,
                created_by=actor,
                expires_at=expires_at,
                revoked_at=None,
                revoked_by=None,
            )
            session.add(row)
            record(
                session,
                at=now,
                actor=actor,
                event_type=EventType.DEVICE_CREDENTIAL_ADDED,
                subject=pid,
                payload={
                    "physical_id": pid,
                    "kind": "public-key",
                    "key_id": key_id,
                    "algorithm": row.algorithm,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
            )
            return _to_record(row)

    def revoke(self, key_id: str, *, actor: str) -> DevicePublicKey:
        now = self._clock.now()
        with self._db.transaction() as session:
            row = session.get(DevicePublicKeyRow, key_id.lower()[:64], with_for_update=True)
            if row is None:
                raise DeviceKeyNotFound("no such registered public key", key_id=key_id[:64])
            if row.revoked_at is None:
                row.revoked_at, row.revoked_by = now, actor
                record(
                    session,
                    at=now,
                    actor=actor,
                    event_type=EventType.DEVICE_CREDENTIAL_REVOKED,
                    subject=row.physical_id,
                    payload={
                        "physical_id": row.physical_id,
                        "kind": "public-key",
                        "key_id": row.key_id,
                    },
                )
            revoked = _to_record(row)
        if self._on_change is not None:
            self._on_change()
        return revoked

    def list_for(self, physical_id: str) -> list[DevicePublicKey]:
        pid = parse_physical_id(physical_id)
        with self._db.read() as session:
            rows = session.execute(
                select(DevicePublicKeyRow)
                .where(DevicePublicKeyRow.physical_id == pid)
                .order_by(DevicePublicKeyRow.created_at, DevicePublicKeyRow.key_id)
            ).scalars()
            return [_to_record(row) for row in rows]

"""Tables of device authentication (`devicetrust.deviceauth`; migration 0004). Imported by
`store.models` so that `Base.metadata` is complete.

Invariants the database enforces: a unit's token key version exists once (primary key
(physical_id, version)); a public key is registered once, to one unit (`key_id`, the SHA-256
of its SubjectPublicKeyInfo, is the primary key); a token id (HMAC nonce, JWT jti) is used
once per unit and method (primary key: a replay cannot insert it again, even in a race).
Token keys are stored only sealed by the vault, never clear.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from devicetrust.store.models import Base

__all__ = ["Base", "DevicePublicKeyRow", "DeviceTokenKeyRow", "DeviceTokenUseRow"]


class DeviceTokenKeyRow(Base):
    """One version of a unit's HMAC token key. Accepted while not revoked and before
    `retires_at` (set when a newer version takes over, after the rotation overlap)."""

    __tablename__ = "device_token_keys"

    physical_id: Mapped[str] = mapped_column(ForeignKey("physical_identities.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    origin: Mapped[str] = mapped_column(String(16))  # generated | given | enrollment
    # AES-256-GCM envelope (vault) of the key, aad naming unit and version; NULL once the
    # version is retired or revoked and purged (the key is erased, the history stays).
    sealed_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    retires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(200))


class DevicePublicKeyRow(Base):
    """A public key a unit signs its JWTs with (registered by an operator or enrollment)."""

    __tablename__ = "device_public_keys"
    __table_args__ = (Index("ix_device_public_keys_physical", "physical_id"),)

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of SPKI
    physical_id: Mapped[str] = mapped_column(ForeignKey("physical_identities.id"))
    algorithm: Mapped[str] = mapped_column(String(16))  # ES256 | EdDSA
    public_key_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(200))


class DeviceTokenUseRow(Base):
    """A single-use token id already spent; kept until a token carrying it would expire."""

    __tablename__ = "device_token_uses"
    __table_args__ = (Index("ix_device_token_uses_expires", "expires_at"),)

    physical_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    method: Mapped[str] = mapped_column(String(16), primary_key=True)  # hmac-token | jwt
    token_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    used_at: Mapped[datetime]
    expires_at: Mapped[datetime]

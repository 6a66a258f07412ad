"""Tables of the security policy (`devicetrust.policy`; migration 0005). Imported by
`store.models` so that `Base.metadata` is complete.

Invariants the database enforces: one settings row per scope (`scope` is the primary key:
`fleet`, `enrollment:<name>`, `device:<physical id>`); a relaxation always has a reason and an
expiry (NOT NULL). Whether a relaxation is active is decided at read time against the clock,
never stored, so a lapsed relaxation needs no job to stop applying.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from devicetrust.store.models import Base

__all__ = ["Base", "PolicyRelaxationRow", "SecurityPolicyRow"]


class SecurityPolicyRow(Base):
    """The fields one scope sets (JSON, as `policy.fields` writes them); unset fields are
    inherited from the less specific scope, then the built-in baseline."""

    __tablename__ = "security_policies"

    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    settings: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(200))


class PolicyRelaxationRow(Base):
    """An explicit, reasoned, expiring exception to the secure baseline."""

    __tablename__ = "policy_relaxations"
    __table_args__ = (
        Index("ix_policy_relaxations_scope_rule", "scope", "rule"),
        Index("ix_policy_relaxations_expires", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    rule: Mapped[str] = mapped_column(String(64))
    value: Mapped[dict[str, Any]]  # {"value": <the field's JSON form>}
    scope: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    revoke_reason: Mapped[str | None] = mapped_column(Text)

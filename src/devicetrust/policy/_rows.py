"""Row lookups and row-to-value conversion for the policy service and the posture report.

Read-only helpers over the caller's session; values are re-parsed by `fields` on the way out,
so a row that no longer parses is reported as a configuration fault rather than trusted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from devicetrust.domain.errors import ConfigurationError, DeviceTrustError
from devicetrust.domain.ids import PhysicalId, parse_physical_id
from devicetrust.policy import fields
from devicetrust.policy.errors import ScopeTargetNotFound
from devicetrust.policy.model import PolicyField
from devicetrust.policy.relaxations import Relaxation
from devicetrust.policy.resolution import Layer
from devicetrust.policy.scopes import PolicyScope, ScopeKind, parse_scope
from devicetrust.store.models import EnrollmentRow, PhysicalIdentityRow, RegistrationRow
from devicetrust.store.models_security_policy import PolicyRelaxationRow, SecurityPolicyRow
from devicetrust.store.registry import unit_not_found


def _corrupt(what: str, exc: DeviceTrustError) -> ConfigurationError:
    return ConfigurationError("policy.stored_invalid", f"stored {what} does not parse: {exc}")


def settings_of(raw: dict[str, Any]) -> dict[PolicyField, Any]:
    out: dict[PolicyField, Any] = {}
    for name, value in raw.items():
        try:
            field = fields.parse_field(name)
            out[field] = fields.parse_value(field, value)
        except DeviceTrustError as exc:
            raise _corrupt("policy setting", exc) from exc
    return out


def settings_json(settings: dict[PolicyField, Any]) -> dict[str, Any]:
    return {f.value: fields.value_json(f, v) for f, v in sorted(settings.items())}


def to_layer(row: SecurityPolicyRow) -> Layer:
    return Layer(parse_scope(row.scope), settings_of(row.settings))


def to_relaxation(row: PolicyRelaxationRow) -> Relaxation:
    try:
        rule = fields.parse_field(row.rule)
        value = fields.parse_value(rule, row.value.get("value"))
    except DeviceTrustError as exc:
        raise _corrupt("relaxation", exc) from exc
    return Relaxation(
        relaxation_id=row.id,
        rule=rule,
        value=value,
        scope=parse_scope(row.scope),
        reason=row.reason,
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        revoke_reason=row.revoke_reason,
    )


def layers(session: Session, scopes: Iterable[str] | None = None) -> list[Layer]:
    stmt = select(SecurityPolicyRow)
    if scopes is not None:
        stmt = stmt.where(SecurityPolicyRow.scope.in_(list(scopes)))
    return [to_layer(row) for row in session.execute(stmt).scalars()]


def live_relaxations(
    session: Session, now: datetime, scopes: Iterable[str] | None = None
) -> list[Relaxation]:
    """Relaxations not revoked and not yet expired at `now` (of `scopes`, if given)."""
    stmt = select(PolicyRelaxationRow).where(
        PolicyRelaxationRow.revoked_at.is_(None), PolicyRelaxationRow.expires_at > now
    )
    if scopes is not None:
        stmt = stmt.where(PolicyRelaxationRow.scope.in_(list(scopes)))
    return [to_relaxation(row) for row in session.execute(stmt).scalars()]


def unit_and_enrollment(session: Session, physical_id: str) -> tuple[PhysicalId, str | None]:
    """The unit's canonical id and the name of the enrollment that admitted it (if any), in
    one query; `identity.physical_not_found` when there is no such unit."""
    pid = parse_physical_id(physical_id)
    row = session.execute(
        select(PhysicalIdentityRow.id, EnrollmentRow.name)
        .outerjoin(RegistrationRow, RegistrationRow.physical_id == PhysicalIdentityRow.id)
        .outerjoin(EnrollmentRow, EnrollmentRow.id == RegistrationRow.enrollment_id)
        .where(PhysicalIdentityRow.id == pid)
    ).first()
    if row is None:
        raise unit_not_found(pid)
    return PhysicalId(row[0]), row[1]


def canonical_scope(session: Session, scope: PolicyScope) -> PolicyScope:
    """The scope with its target checked: an enrollment named by id or name (stored by
    name), a unit that exists."""
    if scope.kind is ScopeKind.ENROLLMENT:
        name = session.execute(
            select(EnrollmentRow.name).where(
                (EnrollmentRow.name == scope.ref) | (EnrollmentRow.id == scope.ref)
            )
        ).scalar()
        if name is None:
            raise ScopeTargetNotFound(
                "policy.unknown_enrollment", f"no enrollment {scope.ref[:64]!r}"
            )
        return PolicyScope(ScopeKind.ENROLLMENT, name)
    if scope.kind is ScopeKind.DEVICE and session.get(PhysicalIdentityRow, scope.ref) is None:
        raise ScopeTargetNotFound("policy.unknown_device", f"no physical identity {scope.ref}")
    return scope

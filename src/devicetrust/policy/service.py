"""`PolicyService`: security policy per fleet, enrollment and device; conscious relaxations;
the effective policy of a device.

    show(scope)                          what a scope sets and what it resolves to
    set(scope, {field: value}, unset=)   tighten (or tune within the baseline)
    relax(rule, value, scope, reason=, expires=)    weaken past the baseline, for a while
    revoke_relaxation(id, reason=)       end one early
    relaxations(...)                     list them (active, lapsed, revoked)
    effective(physical_id)               the merged policy and each field's source

Every change is one transaction with its audit entry and outbox event (`policy.updated`,
`policy.relaxed`, `policy.relaxation_revoked`); bad input raises before anything is written.
Never lets a plain `set` grant more than the baseline, never records a relaxation without a
reason and an expiry within `max_relaxation`, and never stores whether a relaxation is
active: that is decided against the clock at every read.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from devicetrust.domain.clock import Clock
from devicetrust.domain.events import EventType
from devicetrust.policy import _rows, fields
from devicetrust.policy.durations import parse_expiry
from devicetrust.policy.errors import (
    InvalidPolicy,
    RelaxationExists,
    RelaxationInactive,
    RelaxationNotFound,
    WeakeningRefused,
)
from devicetrust.policy.model import BASELINE, PolicyField, SecurityPolicy
from devicetrust.policy.posture import PostureReports
from devicetrust.policy.relaxations import (
    MAX_RELAXATION,
    Relaxation,
    RelaxationStatus,
    check_expiry,
    clean_reason,
)
from devicetrust.policy.resolution import EffectivePolicy, resolve, resolve_scope
from devicetrust.policy.scopes import FLEET, PolicyScope, ScopeKind, parse_scope
from devicetrust.store.database import Database
from devicetrust.store.journal import record
from devicetrust.store.models_security_policy import PolicyRelaxationRow, SecurityPolicyRow


@dataclass(frozen=True, slots=True)
class ScopePolicy:
    """What one scope sets itself, and what it resolves to over its parents."""

    scope: PolicyScope
    settings: Mapping[PolicyField, Any]
    effective: EffectivePolicy
    updated_at: datetime | None = None
    updated_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope.key,
            "settings": _rows.settings_json(dict(self.settings)),
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "updated_by": self.updated_by,
            "effective": self.effective.to_json(),
        }


class PolicyService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        baseline: SecurityPolicy = BASELINE,
        max_relaxation: timedelta = MAX_RELAXATION,
    ) -> None:
        self._db = db
        self._clock = clock
        self._baseline = baseline
        self._max_relaxation = max_relaxation
        self.posture = PostureReports(db, clock, baseline=baseline)

    @property
    def baseline(self) -> SecurityPolicy:
        return self._baseline

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def database(self) -> Database:
        return self._db

    # ---- settings -------------------------------------------------------------------------

    def show(self, scope: str | PolicyScope) -> ScopePolicy:
        wanted = scope if isinstance(scope, PolicyScope) else parse_scope(scope)
        now = self._clock.now()
        with self._db.read() as session:
            target = _rows.canonical_scope(session, wanted)
            row = session.get(SecurityPolicyRow, target.key)
            layers = _rows.layers(session)
            relaxations = _rows.live_relaxations(session, now)
            if target.kind is ScopeKind.DEVICE:  # a unit resolves over its enrollment too
                pid, enrollment = _rows.unit_and_enrollment(session, target.ref)
                effective = resolve(
                    layers,
                    relaxations,
                    now,
                    physical_id=pid,
                    enrollment=enrollment,
                    baseline=self._baseline,
                )
            else:
                effective = resolve_scope(target, layers, relaxations, now, baseline=self._baseline)
        return ScopePolicy(
            scope=target,
            settings=_rows.settings_of(row.settings) if row else {},
            effective=effective,
            updated_at=row.updated_at if row else None,
            updated_by=row.updated_by if row else None,
        )

    def set(
        self,
        scope: str | PolicyScope,
        changes: Mapping[str, object],
        *,
        actor: str,
        unset: Iterable[str] = (),
    ) -> ScopePolicy:
        """Set fields at `scope` (each at least as strict as the baseline) and drop the
        fields in `unset` (they are inherited again)."""
        wanted = scope if isinstance(scope, PolicyScope) else parse_scope(scope)
        parsed = self._strict_values(changes)
        dropped = {fields.parse_field(name) for name in unset}
        if not parsed and not dropped:
            raise InvalidPolicy("policy.no_change", "name at least one field to set or unset")
        both = dropped & set(parsed)
        if both:
            raise InvalidPolicy(
                "policy.invalid_change",
                f"a field is either set or unset: {', '.join(sorted(f.value for f in both))}",
            )
        now = self._clock.now()
        with self._db.transaction() as session:
            _forget_effective(session)
            target = _rows.canonical_scope(session, wanted)
            row = session.execute(
                select(SecurityPolicyRow)
                .where(SecurityPolicyRow.scope == target.key)
                .with_for_update()
            ).scalar_one_or_none()
            before = _rows.settings_of(row.settings) if row else {}
            after = {f: v for f, v in {**before, **parsed}.items() if f not in dropped}
            if after:
                if row is None:
                    row = SecurityPolicyRow(scope=target.key, created_at=now, settings={})
                    session.add(row)
                row.settings = _rows.settings_json(after)
                row.updated_at = now
                row.updated_by = actor
            elif row is not None:
                session.delete(row)  # nothing set here any more: inherit everything
            record(
                session,
                at=now,
                actor=actor,
                event_type=EventType.POLICY_UPDATED,
                subject=target.key,
                payload={
                    "scope": target.key,
                    "set": _rows.settings_json(parsed),
                    "unset": sorted(f.value for f in dropped),
                    "before": _rows.settings_json(before),
                },
            )
        return self.show(target)

    def _strict_values(self, changes: Mapping[str, object]) -> dict[PolicyField, Any]:
        if not isinstance(changes, Mapping):
            raise InvalidPolicy("policy.invalid_change", "changes map field names to values")
        parsed: dict[PolicyField, Any] = {}
        for name, raw in changes.items():
            field = fields.parse_field(name)
            value = fields.parse_value(field, raw)
            floor = self._baseline.value(field)
            if not fields.stricter_or_equal(field, value, floor):
                raise WeakeningRefused(
                    f"{field.value}: {fields.describe(field, value)} is weaker than the secure "
                    f"baseline ({fields.describe(field, floor)}); weakening needs "
                    "`devicetrust policy relax` with a reason and an expiry",
                    field=field.value,
                )
            parsed[field] = value
        return parsed

    # ---- relaxations ----------------------------------------------------------------------

    def relax(
        self,
        rule: str | PolicyField,
        value: object,
        scope: str | PolicyScope,
        *,
        reason: str,
        expires: datetime | timedelta | str,
        actor: str,
    ) -> Relaxation:
        """Allow `rule` to be `value` (weaker than the baseline) at `scope` until `expires`
        (a time, or a duration from now; at most `max_relaxation`)."""
        field = fields.parse_field(rule)
        parsed = fields.parse_value(field, value)
        wanted = scope if isinstance(scope, PolicyScope) else parse_scope(scope)
        why = clean_reason(reason)
        now = self._clock.now()
        expires_at = parse_expiry(expires, now)
        check_expiry(expires_at, now, self._max_relaxation)
        floor = self._baseline.value(field)
        if fields.stricter_or_equal(field, parsed, floor):
            raise InvalidPolicy(
                "policy.not_a_relaxation",
                f"{field.value}: {fields.describe(field, parsed)} is within the secure baseline "
                f"({fields.describe(field, floor)}); use `devicetrust policy set`",
                field=field.value,
            )
        with self._db.transaction() as session:
            _forget_effective(session)
            target = _rows.canonical_scope(session, wanted)
            current = session.execute(
                select(PolicyRelaxationRow.id).where(
                    PolicyRelaxationRow.scope == target.key,
                    PolicyRelaxationRow.rule == field.value,
                    PolicyRelaxationRow.revoked_at.is_(None),
                    PolicyRelaxationRow.expires_at > now,
                )
            ).scalar()
            if current is not None:
                raise RelaxationExists(
                    f"relaxation {current} of {field.value} at {target.key} is still active; "
                    "revoke it first to change it",
                    relaxation_id=current,
                )
            row = PolicyRelaxationRow(
                id=str(uuid.uuid4()),
                rule=field.value,
                value={"value": fields.value_json(field, parsed)},
                scope=target.key,
                reason=why,
                created_at=now,
                created_by=actor,
                expires_at=expires_at,
                revoked_at=None,
                revoked_by=None,
                revoke_reason=None,
            )
            session.add(row)
            relaxation = _rows.to_relaxation(row)
            record(
                session,
                at=now,
                actor=actor,
                event_type=EventType.POLICY_RELAXED,
                subject=target.key,
                payload={
                    **relaxation.to_json(now),
                    "baseline": fields.value_json(field, floor),
                },
            )
        return relaxation

    def revoke_relaxation(self, relaxation_id: str, *, actor: str, reason: str) -> Relaxation:
        why = clean_reason(reason, what="revocation reason")
        now = self._clock.now()
        with self._db.transaction() as session:
            _forget_effective(session)
            row = session.execute(
                select(PolicyRelaxationRow)
                .where(PolicyRelaxationRow.id == _relaxation_id(relaxation_id))
                .with_for_update()
            ).scalar_one_or_none()
            if row is None:
                raise RelaxationNotFound(f"no relaxation {relaxation_id[:40]!r}")
            status = _rows.to_relaxation(row).status(now)
            if status is not RelaxationStatus.ACTIVE:
                raise RelaxationInactive(
                    f"relaxation {row.id} is already {status.value}", status=status.value
                )
            row.revoked_at = now
            row.revoked_by = actor
            row.revoke_reason = why
            relaxation = _rows.to_relaxation(row)
            record(
                session,
                at=now,
                actor=actor,
                event_type=EventType.POLICY_RELAXATION_REVOKED,
                subject=row.scope,
                payload=relaxation.to_json(now),
            )
        return relaxation

    def get_relaxation(self, relaxation_id: str) -> Relaxation:
        with self._db.read() as session:
            row = session.get(PolicyRelaxationRow, _relaxation_id(relaxation_id))
            if row is None:
                raise RelaxationNotFound(f"no relaxation {relaxation_id[:40]!r}")
            return _rows.to_relaxation(row)

    def relaxations(
        self,
        *,
        scope: str | None = None,
        status: RelaxationStatus | str | None = None,
        ended_since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Relaxation]:
        """Newest first; `status` filters as of now; `ended_since` keeps the active ones
        and those that lapsed or were revoked at or after that time."""
        if not 1 <= limit <= 1000 or offset < 0:
            raise InvalidPolicy("request.invalid_page", "limit is 1-1000 and offset is >= 0")
        now = self._clock.now()
        t = PolicyRelaxationRow
        stmt = select(t).order_by(t.created_at.desc(), t.id.desc())
        if scope is not None:
            with self._db.read() as session:
                stmt = stmt.where(t.scope == _rows.canonical_scope(session, parse_scope(scope)).key)
        if status is not None:
            chosen = _status(status)
            if chosen is RelaxationStatus.ACTIVE:
                stmt = stmt.where(t.revoked_at.is_(None), t.expires_at > now)
            elif chosen is RelaxationStatus.LAPSED:
                stmt = stmt.where(t.revoked_at.is_(None), t.expires_at <= now)
            else:
                stmt = stmt.where(t.revoked_at.is_not(None))
        if ended_since is not None:
            stmt = stmt.where(
                ((t.revoked_at.is_(None)) & (t.expires_at >= ended_since))
                | (t.revoked_at >= ended_since)
            )
        with self._db.read() as session:
            rows = session.execute(stmt.limit(limit).offset(offset)).scalars()
            return [_rows.to_relaxation(row) for row in rows]

    # ---- resolution -----------------------------------------------------------------------

    def effective(self, physical_id: str, *, enrollment: str | None = None) -> EffectivePolicy:
        """The policy in force for the unit now: baseline < fleet < its enrollment < the
        unit, each with its active relaxations; `sources` says where each field came from.
        `enrollment` (a name) overrides the one of its registration: provisioning asks for
        the enrollment admitting the unit now, before the registration records it."""
        now = self._clock.now()
        with self._db.read() as session:
            # Inside one `Database.snapshot()` (a provisioning's checks) it is read once.
            memo: dict[tuple[str, str | None], EffectivePolicy] = session.info.setdefault(
                _EFFECTIVE_MEMO, {}
            )
            remembered = memo.get((physical_id, enrollment))
            if remembered is not None:
                return remembered
            pid, registered = _rows.unit_and_enrollment(session, physical_id)
            chosen = enrollment or registered
            scopes = [FLEET.key, f"device:{pid}"]
            if chosen is not None:
                scopes.append(f"enrollment:{chosen}")
            layers = _rows.layers(session, scopes)
            relaxations = _rows.live_relaxations(session, now, scopes)
            effective = resolve(
                layers,
                relaxations,
                now,
                physical_id=pid,
                enrollment=chosen,
                baseline=self._baseline,
            )
            memo[(physical_id, enrollment)] = effective
        return effective


_EFFECTIVE_MEMO = "devicetrust.policy.effective"


def _forget_effective(session: Session) -> None:
    """A change to the policy tables makes what this session remembered stale."""
    session.info.pop(_EFFECTIVE_MEMO, None)


def _relaxation_id(value: str) -> str:
    try:
        return str(uuid.UUID(str(value).strip()))
    except ValueError:
        raise InvalidPolicy(
            "policy.invalid_relaxation_id", f"a relaxation id is a UUID, got {str(value)[:40]!r}"
        ) from None


def _status(value: RelaxationStatus | str) -> RelaxationStatus:
    try:
        return RelaxationStatus(value)
    except ValueError:
        known = ", ".join(s.value for s in RelaxationStatus)
        raise InvalidPolicy(
            "policy.invalid_status", f"status is one of {known}, got {str(value)[:20]!r}"
        ) from None

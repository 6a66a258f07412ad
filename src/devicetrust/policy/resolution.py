"""Resolution: the policy in force for one device (or scope), and where each field came from.

Order, least to most specific; each step overrides the fields it names:

    baseline (built-in secure defaults)
    fleet settings            then fleet relaxations active now
    enrollment settings       then that enrollment's relaxations active now
    device settings           then that device's relaxations active now

Settings are always at least as strict as the baseline (`set` refuses anything else), so the
only way the result grants more than the baseline is through a relaxation, and `strict` (the
same resolution without relaxations) shows what the device would face without them. At one
scope, the newest active relaxation of a rule wins. Pure: `now` is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from devicetrust.domain.ids import PhysicalId
from devicetrust.policy import fields
from devicetrust.policy.model import BASELINE, POLICY_FIELDS, PolicyField, SecurityPolicy
from devicetrust.policy.relaxations import Relaxation, newest_first
from devicetrust.policy.scopes import FLEET, PolicyScope, ScopeKind

BASELINE_SOURCE = "baseline"


@dataclass(frozen=True, slots=True)
class Layer:
    """The fields one scope sets (typed values, as `fields.parse_value` returns them)."""

    scope: PolicyScope
    settings: Mapping[PolicyField, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    """The merged policy, the same without relaxations (`strict`), each field's source
    (`baseline`, `fleet`, `enrollment:<name>`, `device:<id>` or `relaxation:<id>`), and the
    relaxations in force. Valid until `valid_until` (the first of those to lapse)."""

    policy: SecurityPolicy
    strict: SecurityPolicy
    sources: Mapping[PolicyField, str]
    relaxations: tuple[Relaxation, ...]
    evaluated_at: datetime
    physical_id: PhysicalId | None = None
    enrollment: str | None = None

    @property
    def valid_until(self) -> datetime | None:
        """Re-resolve no later than this: a relaxation in force lapses then."""
        return min((r.expires_at for r in self.relaxations), default=None)

    def relaxed_fields(self) -> frozenset[PolicyField]:
        return frozenset(r.rule for r in self.relaxations)

    def to_json(self) -> dict[str, Any]:
        now = self.evaluated_at
        return {
            "physical_id": self.physical_id,
            "enrollment": self.enrollment,
            "evaluated_at": now.isoformat(),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "policy": fields.policy_json(self.policy),
            "sources": {f.value: self.sources[f] for f in POLICY_FIELDS},
            "strict": fields.policy_json(self.strict),
            "relaxations": [r.to_json(now) for r in self.relaxations],
        }


def applies_to(scope: PolicyScope, physical_id: str | None, enrollment: str | None) -> bool:
    if scope.kind is ScopeKind.FLEET:
        return True
    if scope.kind is ScopeKind.ENROLLMENT:
        return enrollment is not None and scope.ref == enrollment
    return physical_id is not None and scope.ref == physical_id


def resolve(
    layers: Iterable[Layer],
    relaxations: Iterable[Relaxation],
    now: datetime,
    *,
    physical_id: PhysicalId | None = None,
    enrollment: str | None = None,
    baseline: SecurityPolicy = BASELINE,
) -> EffectivePolicy:
    """Merge the layers and relaxations that apply to (`physical_id`, `enrollment`); layers
    or relaxations of other scopes are ignored, so callers may pass them all."""
    mine = [layer for layer in layers if applies_to(layer.scope, physical_id, enrollment)]
    active = [
        r
        for r in newest_first(list(relaxations))
        if r.active_at(now) and applies_to(r.scope, physical_id, enrollment)
    ]
    strict: dict[PolicyField, Any] = {}
    relaxed: dict[PolicyField, Any] = {}
    sources: dict[PolicyField, str] = dict.fromkeys(POLICY_FIELDS, BASELINE_SOURCE)
    in_force: dict[PolicyField, Relaxation] = {}
    for kind in ScopeKind:
        for layer in mine:
            if layer.scope.kind is not kind:
                continue
            for name, value in layer.settings.items():
                strict[name] = value
                relaxed.pop(name, None)  # a more specific setting outranks a relaxation
                in_force.pop(name, None)
                sources[name] = layer.scope.key
        done: set[PolicyField] = set()
        for relaxation in active:
            if relaxation.scope.kind is not kind or relaxation.rule in done:
                continue  # another scope's, or an older one of the same rule and scope
            done.add(relaxation.rule)
            relaxed[relaxation.rule] = relaxation.value
            sources[relaxation.rule] = f"relaxation:{relaxation.relaxation_id}"
            in_force[relaxation.rule] = relaxation
    strict_policy = replace(baseline, **{f.value: v for f, v in strict.items()})
    policy = replace(strict_policy, **{f.value: v for f, v in relaxed.items()})
    return EffectivePolicy(
        policy=policy,
        strict=strict_policy,
        sources=sources,
        relaxations=tuple(sorted(in_force.values(), key=lambda r: r.rule.value)),
        evaluated_at=now,
        physical_id=physical_id,
        enrollment=enrollment,
    )


def resolve_scope(
    scope: PolicyScope,
    layers: Iterable[Layer],
    relaxations: Iterable[Relaxation],
    now: datetime,
    *,
    baseline: SecurityPolicy = BASELINE,
) -> EffectivePolicy:
    """What a scope itself resolves to: the fleet alone, an enrollment over the fleet, or a
    device over the fleet (its enrollment, if any, is the caller's to name via `resolve`)."""
    if scope == FLEET:
        return resolve(layers, relaxations, now, baseline=baseline)
    if scope.kind is ScopeKind.ENROLLMENT:
        return resolve(layers, relaxations, now, enrollment=scope.ref, baseline=baseline)
    return resolve(layers, relaxations, now, physical_id=PhysicalId(scope.ref), baseline=baseline)

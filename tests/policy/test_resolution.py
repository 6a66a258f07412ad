"""Resolution laws (hypothesis): the most specific scope that sets a field supplies it;
without relaxations nothing is weaker than the baseline; a relaxation applies only to its
scope and only while active, and says so in `sources`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from devicetrust.domain.ids import PhysicalId
from devicetrust.policy import (
    BASELINE,
    FLEET,
    Layer,
    PolicyField,
    PolicyScope,
    Relaxation,
    ScopeKind,
    TlsVersion,
    parse_value,
    resolve,
)
from devicetrust.policy.fields import stricter_or_equal, weakened_fields

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
PID = PhysicalId("c2c38155-b0d2-48b6-82fd-22fe3b316224")
OTHER = PhysicalId("0b5d3c2e-2b8f-4d7a-9c41-3c1f1a0e5d11")
SCOPES = [
    FLEET,
    PolicyScope(ScopeKind.ENROLLMENT, "line-03"),
    PolicyScope(ScopeKind.ENROLLMENT, "line-04"),
    PolicyScope(ScopeKind.DEVICE, PID),
    PolicyScope(ScopeKind.DEVICE, OTHER),
]
# Values at least as strict as the baseline, per field (what `set` may store).
STRICT: dict[PolicyField, list[Any]] = {
    PolicyField.AUTH_METHODS: ["mtls", "jwt", "mtls,jwt"],
    PolicyField.MIN_TLS_VERSION: ["1.3"],
    PolicyField.MAX_CERTIFICATE_LIFETIME: ["1h", "12h", "24h"],
    PolicyField.MAX_TOKEN_LIFETIME: ["5m", "1h"],
    PolicyField.CLOCK_SKEW: ["0", "1m", "5m"],
    PolicyField.RSA_MIN_BITS: [3072, 4096],
    PolicyField.HARDWARE_KEY_REQUIRED: [True],
    PolicyField.MEASURED_BOOT_REQUIRED: [True, False],
    PolicyField.ALLOWED_NETWORKS: ["10.0.0.0/8", "10.3.0.0/16,fd00::/8"],
    PolicyField.CONNECTIONS_PER_MINUTE: [1, 10],
}
WEAK: dict[PolicyField, list[Any]] = {
    PolicyField.MIN_TLS_VERSION: ["1.2"],
    PolicyField.MAX_CERTIFICATE_LIFETIME: ["7d", "30d"],
    PolicyField.HARDWARE_KEY_REQUIRED: [False],
    PolicyField.RSA_MIN_BITS: [2048],
    PolicyField.AUTH_METHODS: ["mtls,hmac-token"],
}


@st.composite
def layers(draw: st.DrawFn) -> list[Layer]:
    out = []
    for scope in draw(st.lists(st.sampled_from(SCOPES), unique=True)):
        fields = draw(st.lists(st.sampled_from(list(STRICT)), unique=True, max_size=4))
        out.append(
            Layer(scope, {f: parse_value(f, draw(st.sampled_from(STRICT[f]))) for f in fields})
        )
    return out


@st.composite
def relaxations(draw: st.DrawFn) -> list[Relaxation]:
    out = []
    for n in range(draw(st.integers(0, 4))):
        rule = draw(st.sampled_from(list(WEAK)))
        created = NOW - timedelta(hours=draw(st.integers(0, 100)))
        out.append(
            Relaxation(
                relaxation_id=f"r{n}",
                rule=rule,
                value=parse_value(rule, draw(st.sampled_from(WEAK[rule]))),
                scope=draw(st.sampled_from(SCOPES)),
                reason="legacy firmware",
                created_at=created,
                created_by="operator:test",
                expires_at=created + timedelta(hours=draw(st.integers(1, 200))),
                revoked_at=draw(st.sampled_from([None, NOW - timedelta(minutes=1)])),
            )
        )
    return out


def _applies(scope: PolicyScope, enrollment: str | None) -> bool:
    return scope in (FLEET, PolicyScope(ScopeKind.DEVICE, PID)) or (
        enrollment is not None and scope == PolicyScope(ScopeKind.ENROLLMENT, enrollment)
    )


@given(layers(), st.sampled_from([None, "line-03"]))
def test_most_specific_setting_wins_and_nothing_is_weaker_than_baseline(
    stack: list[Layer], enrollment: str | None
) -> None:
    effective = resolve(stack, [], NOW, physical_id=PID, enrollment=enrollment)
    assert effective.policy == effective.strict
    assert weakened_fields(effective.policy, BASELINE) == []
    assert effective.relaxations == ()
    for field in PolicyField:
        setting = [
            layer
            for layer in stack
            if field in layer.settings and _applies(layer.scope, enrollment)
        ]
        if not setting:
            assert effective.sources[field] == "baseline"
            assert effective.policy.value(field) == BASELINE.value(field)
            continue
        winner = max(setting, key=lambda layer: layer.scope.kind.level)
        assert effective.sources[field] == winner.scope.key
        assert effective.policy.value(field) == winner.settings[field]


@given(layers(), relaxations(), st.sampled_from([None, "line-03"]))
def test_relaxations_apply_only_while_active_and_only_to_their_scope(
    stack: list[Layer], relaxed: list[Relaxation], enrollment: str | None
) -> None:
    effective = resolve(stack, relaxed, NOW, physical_id=PID, enrollment=enrollment)
    strict = resolve(stack, [], NOW, physical_id=PID, enrollment=enrollment)
    assert effective.strict == strict.policy
    for relaxation in effective.relaxations:
        assert relaxation.active_at(NOW)
        assert _applies(relaxation.scope, enrollment)
        assert effective.sources[relaxation.rule] == f"relaxation:{relaxation.relaxation_id}"
        assert effective.policy.value(relaxation.rule) == relaxation.value
        assert effective.valid_until is not None
        assert effective.valid_until <= relaxation.expires_at
    for field in PolicyField:
        if field not in effective.relaxed_fields():
            assert effective.policy.value(field) == strict.policy.value(field)
            assert effective.sources[field] == strict.sources[field]
        assert stricter_or_equal(field, strict.policy.value(field), BASELINE.value(field))
    in_force = {r.rule: r for r in effective.relaxations}
    for rule in WEAK:
        candidates = [
            r
            for r in relaxed
            if r.rule == rule and r.active_at(NOW) and _applies(r.scope, enrollment)
        ]
        if not candidates:
            assert rule not in in_force
            continue
        top = max(candidates, key=lambda r: (r.scope.kind.level, r.created_at, r.relaxation_id))
        outranked = any(
            rule in layer.settings
            and _applies(layer.scope, enrollment)
            and layer.scope.kind.level > top.scope.kind.level
            for layer in stack
        )
        assert (rule not in in_force) if outranked else (in_force[rule] == top)
    # the same stack one moment after every relaxation ended is the strict policy again
    later = max((r.expires_at for r in relaxed), default=NOW) + timedelta(seconds=1)
    assert resolve(stack, relaxed, later, physical_id=PID, enrollment=enrollment).policy == (
        strict.policy
    )


def test_a_more_specific_setting_outranks_a_fleet_relaxation() -> None:
    fleet_relaxation = Relaxation(
        "r1",
        PolicyField.MIN_TLS_VERSION,
        TlsVersion.TLS_1_2,
        FLEET,
        "old PLC firmware",
        NOW - timedelta(hours=1),
        "operator:test",
        NOW + timedelta(days=1),
    )
    device = Layer(
        PolicyScope(ScopeKind.DEVICE, PID), {PolicyField.MIN_TLS_VERSION: TlsVersion.TLS_1_3}
    )
    mine = resolve([device], [fleet_relaxation], NOW, physical_id=PID)
    other = resolve([device], [fleet_relaxation], NOW, physical_id=OTHER)
    assert mine.policy.min_tls_version is TlsVersion.TLS_1_3 and mine.relaxations == ()
    assert other.policy.min_tls_version is TlsVersion.TLS_1_2
    assert other.sources[PolicyField.MIN_TLS_VERSION] == "relaxation:r1"

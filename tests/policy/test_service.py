"""`PolicyService` on both backends: settings per scope, refusals that change nothing,
relaxations with reason and expiry, audit entries and outbox events, lapse by the clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from devicetrust.domain import FixedClock
from devicetrust.domain.errors import DeviceTrustError, NotFound
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.policy import (
    PolicyField,
    PolicyService,
    RelaxationStatus,
    TlsVersion,
)
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow, OutboxRow
from tests.conftest import snapshot_tables
from tests.policy.conftest import ACTOR

REASON = "PLC firmware lacks TLS 1.3 until the Q3 update"


def _events(db: Database, prefix: str) -> list[OutboxRow]:
    with db.read() as session:
        rows = session.execute(select(OutboxRow).order_by(OutboxRow.id)).scalars().all()
        return [r for r in rows if r.type.startswith(prefix)]


def _audit(db: Database) -> list[AuditEntryRow]:
    with db.read() as session:
        return list(session.execute(select(AuditEntryRow).order_by(AuditEntryRow.seq)).scalars())


def test_set_tightens_show_resolves_and_unset_inherits(
    policy: PolicyService, db: Database, units: list[PhysicalIdentity]
) -> None:
    pid = units[0].physical_id
    policy.set("fleet", {"max_certificate_lifetime": "12h", "auth_methods": "mtls"}, actor=ACTOR)
    policy.set(f"device:{pid}", {"max_certificate_lifetime": "1h"}, actor=ACTOR)
    effective = policy.effective(pid)
    assert effective.policy.max_certificate_lifetime == timedelta(hours=1)
    assert effective.sources[PolicyField.MAX_CERTIFICATE_LIFETIME] == f"device:{pid}"
    assert effective.sources[PolicyField.AUTH_METHODS] == "fleet"
    assert effective.sources[PolicyField.MIN_TLS_VERSION] == "baseline"
    other = policy.effective(units[1].physical_id)
    assert other.policy.max_certificate_lifetime == timedelta(hours=12)
    shown = policy.show("fleet")
    assert set(shown.settings) == {PolicyField.MAX_CERTIFICATE_LIFETIME, PolicyField.AUTH_METHODS}
    # a fleet value within the baseline may be loosened again by a plain set
    policy.set("fleet", {"max_certificate_lifetime": "24h"}, actor=ACTOR)
    policy.set(f"device:{pid}", {}, unset=["max_certificate_lifetime"], actor=ACTOR)
    assert policy.effective(pid).sources[PolicyField.MAX_CERTIFICATE_LIFETIME] == "fleet"
    assert policy.show(f"device:{pid}").settings == {}
    updated = _events(db, "policy.updated")
    assert len(updated) == 4
    assert updated[0].payload["set"] == {
        "auth_methods": ["mtls"],
        "max_certificate_lifetime": 43200,
    }
    assert [a.action for a in _audit(db)].count("policy.updated") == 4


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"min_tls_version": "1.2"}, "policy.weakens"),
        ({"max_certificate_lifetime": "2d"}, "policy.weakens"),
        ({"hardware_key_required": "false"}, "policy.weakens"),
        ({"auth_methods": "mtls,hmac-token"}, "policy.weakens"),
        ({"rsa_min_bits": 2048}, "policy.weakens"),
        ({"messages_per_second": 500}, "policy.weakens"),
        ({"tls13_cipher_suites": "TLS_AES_128_CCM_8_SHA256"}, "policy.weakens"),
        ({"max_certificate_lifetime": "100d"}, "policy.out_of_range"),
        ({"no_such_field": "1"}, "policy.unknown_field"),
        ({"allowed_networks": "10.0.0.1/8"}, "policy.invalid_value"),
        ({}, "policy.no_change"),
    ],
)
def test_bad_or_weakening_sets_are_refused_and_change_nothing(
    policy: PolicyService, db: Database, changes: dict[str, object], code: str
) -> None:
    policy.set("fleet", {"max_certificate_lifetime": "12h"}, actor=ACTOR)
    before = snapshot_tables(db)
    with pytest.raises(DeviceTrustError) as refused:
        policy.set("fleet", changes, actor=ACTOR)
    assert refused.value.code == code
    assert 400 <= refused.value.status < 500
    assert snapshot_tables(db) == before


def test_scopes_must_name_what_exists(policy: PolicyService, db: Database) -> None:
    before = snapshot_tables(db)
    with pytest.raises(NotFound) as no_unit:
        policy.set("device:c2c38155-b0d2-48b6-82fd-22fe3b316224", {"clock_skew": "1m"}, actor=ACTOR)
    assert no_unit.value.code == "policy.unknown_device"
    with pytest.raises(NotFound) as no_enrollment:
        policy.relax(
            "min_tls_version", "1.2", "enrollment:nope", reason=REASON, expires="1d", actor=ACTOR
        )
    assert no_enrollment.value.code == "policy.unknown_enrollment"
    with pytest.raises(DeviceTrustError) as bad:
        policy.set("team:a", {"clock_skew": "1m"}, actor=ACTOR)
    assert bad.value.code == "policy.invalid_scope"
    with pytest.raises(NotFound) as unknown:
        policy.effective("c2c38155-b0d2-48b6-82fd-22fe3b316224")
    assert unknown.value.code == "identity.physical_not_found"
    assert snapshot_tables(db) == before


@pytest.mark.parametrize(
    ("rule", "value", "reason", "expires", "code"),
    [
        ("min_tls_version", "1.2", "", "7d", "policy.reason_required"),
        ("min_tls_version", "1.2", "   ", "7d", "policy.reason_required"),
        ("min_tls_version", "1.2", "because", "7d", "policy.reason_required"),
        ("min_tls_version", "1.2", REASON, "", "policy.expiry_required"),
        ("min_tls_version", "1.2", REASON, "91d", "policy.expiry_too_far"),
        ("min_tls_version", "1.2", REASON, "2026-01-01T00:00:00Z", "policy.expiry_in_past"),
        ("min_tls_version", "1.2", REASON, "2026-12-01T00:00:00", "policy.invalid_expiry"),
        ("min_tls_version", "1.3", REASON, "7d", "policy.not_a_relaxation"),
        ("max_certificate_lifetime", "12h", REASON, "7d", "policy.not_a_relaxation"),
        ("min_tls_version", "1.0", REASON, "7d", "policy.out_of_range"),
        ("max_certificate_lifetime", "400d", REASON, "7d", "policy.out_of_range"),
        ("passwords", "on", REASON, "7d", "policy.unknown_field"),
    ],
)
def test_relaxations_without_reason_or_expiry_or_beyond_limits_are_refused(
    policy: PolicyService,
    db: Database,
    rule: str,
    value: str,
    reason: str,
    expires: str,
    code: str,
) -> None:
    before = snapshot_tables(db)
    with pytest.raises(DeviceTrustError) as refused:
        policy.relax(rule, value, "fleet", reason=reason, expires=expires, actor=ACTOR)
    assert refused.value.code == code
    assert refused.value.status == 400
    assert snapshot_tables(db) == before


def test_a_relaxation_is_audited_applies_to_its_scope_and_lapses_with_the_clock(
    policy: PolicyService,
    db: Database,
    clock: FixedClock,
    line_03_member: tuple[str, str],
) -> None:
    member, outsider = line_03_member

    relaxation = policy.relax(
        "min_tls_version",
        "1.2",
        "enrollment:line-03",
        reason=REASON,
        expires="7d",
        actor="operator:alice",
    )
    assert relaxation.expires_at == clock.now() + timedelta(days=7)
    effective = policy.effective(member)
    assert effective.enrollment == "line-03"
    assert effective.policy.min_tls_version is TlsVersion.TLS_1_2
    assert effective.strict.min_tls_version is TlsVersion.TLS_1_3
    assert (
        effective.sources[PolicyField.MIN_TLS_VERSION] == f"relaxation:{relaxation.relaxation_id}"
    )
    assert effective.valid_until == relaxation.expires_at
    assert policy.effective(outsider).policy.min_tls_version is TlsVersion.TLS_1_3

    event = _events(db, "policy.relaxed")[0]
    assert event.subject == "enrollment:line-03"
    assert event.payload["reason"] == REASON and event.payload["value"] == "1.2"
    audit = next(a for a in _audit(db) if a.action == "policy.relaxed")
    assert audit.actor == "operator:alice"
    assert audit.details["expires_at"] == relaxation.expires_at.isoformat()

    with pytest.raises(DeviceTrustError) as twice:
        policy.relax(
            "min_tls_version", "1.2", "enrollment:line-03", reason=REASON, expires="1d", actor=ACTOR
        )
    assert twice.value.code == "policy.relaxation_exists"

    clock.advance(timedelta(days=7))  # lapses at its expiry: no job, just the clock
    lapsed = policy.effective(member)
    assert lapsed.policy.min_tls_version is TlsVersion.TLS_1_3
    assert lapsed.relaxations == ()
    assert policy.get_relaxation(relaxation.relaxation_id).status(clock.now()) is (
        RelaxationStatus.LAPSED
    )
    assert policy.relaxations(status="active") == []
    assert [r.relaxation_id for r in policy.relaxations(status="lapsed")] == [
        relaxation.relaxation_id
    ]
    before = snapshot_tables(db)
    with pytest.raises(DeviceTrustError) as late:
        policy.revoke_relaxation(relaxation.relaxation_id, actor=ACTOR, reason="too late now")
    assert late.value.code == "policy.relaxation_inactive"
    assert snapshot_tables(db) == before


def test_revoking_early(policy: PolicyService, db: Database, units: list[PhysicalIdentity]) -> None:
    pid = units[0].physical_id
    relaxation = policy.relax(
        "hardware_key_required",
        "false",
        f"device:{pid}",
        reason="bench unit without a TPM",
        expires="2026-12-01T00:00:00+00:00",
        actor=ACTOR,
    )
    assert policy.effective(pid).policy.hardware_key_required is False
    before = snapshot_tables(db)
    with pytest.raises(DeviceTrustError) as no_reason:
        policy.revoke_relaxation(relaxation.relaxation_id, actor=ACTOR, reason="")
    assert no_reason.value.code == "policy.reason_required"
    assert snapshot_tables(db) == before
    with pytest.raises(DeviceTrustError) as unknown:
        policy.revoke_relaxation(
            "5d7e0c0e-0000-4000-8000-000000000000", actor=ACTOR, reason="no such relaxation"
        )
    assert unknown.value.code == "policy.relaxation_not_found"
    with pytest.raises(DeviceTrustError) as malformed:
        policy.revoke_relaxation("not-an-id", actor=ACTOR, reason="malformed id here")
    assert malformed.value.code == "policy.invalid_relaxation_id"
    revoked = policy.revoke_relaxation(
        relaxation.relaxation_id, actor="operator:bob", reason="TPM module fitted"
    )
    assert revoked.revoked_by == "operator:bob"
    assert policy.effective(pid).policy.hardware_key_required is True
    assert [r.relaxation_id for r in policy.relaxations(status="revoked")] == [
        relaxation.relaxation_id
    ]
    assert _events(db, "policy.relaxation_revoked")[0].payload["revoke_reason"] == (
        "TPM module fitted"
    )
    # a new relaxation of the same rule may follow the revoked one
    policy.relax(
        "hardware_key_required",
        "false",
        f"device:{pid}",
        reason="bench unit again",
        expires="1d",
        actor=ACTOR,
    )

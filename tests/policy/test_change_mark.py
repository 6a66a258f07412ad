"""`change_mark`: the mark of a unit's scopes moves with every committed policy change to
one of them -- the fleet, its enrollment, the unit itself -- made by any `PolicyService`,
and with no other; and `PolicyLimits` (device authentication) applies such a change at the
next read, never later (SQLite and PostgreSQL)."""

from __future__ import annotations

from ipaddress import ip_network

from sqlalchemy import bindparam, select

from devicetrust.deviceauth.policy_limits import PolicyLimits
from devicetrust.domain import FixedClock
from devicetrust.domain.ids import PhysicalId
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.policy import PolicyService, ScopeKind
from devicetrust.policy.change_mark import FLEET_KEY, change_mark, scope_key
from devicetrust.store.database import Database
from tests.policy.conftest import ACTOR

REASON = "legacy PLC firmware until the Q3 update"
_MARKS = select(
    change_mark(FLEET_KEY, scope_key(ScopeKind.ENROLLMENT, bindparam("enrollment"))),
    change_mark(scope_key(ScopeKind.DEVICE, bindparam("pid"))),
)


def marks(db: Database, enrollment: str, pid: str) -> tuple[int | None, int | None]:
    with db.read() as session:
        shared, own = session.execute(_MARKS, {"enrollment": enrollment, "pid": pid}).one()
    return shared, own


def test_a_mark_moves_with_its_scopes_changes_only(
    db: Database, policy: PolicyService, units: list[PhysicalIdentity]
) -> None:
    unit, other = units[0].physical_id, units[1].physical_id
    assert marks(db, "line-03", unit) == (None, None)  # nothing ever set: nothing to read

    elsewhere = PolicyService(db, policy.clock)  # another process's service
    elsewhere.set(f"device:{other}", {"clock_skew": "1m"}, actor=ACTOR)
    assert marks(db, "line-03", unit) == (None, None)

    elsewhere.set(f"device:{unit}", {"clock_skew": "1m"}, actor=ACTOR)
    shared, own = marks(db, "line-03", unit)
    assert shared is None and own is not None

    elsewhere.set("fleet", {"clock_skew": "1m"}, actor=ACTOR)
    after_fleet = marks(db, "line-03", unit)
    assert after_fleet[0] is not None and after_fleet[0] > own and after_fleet[1] == own

    relaxation = elsewhere.relax(
        "min_tls_version", "1.2", f"device:{unit}", reason=REASON, expires="1d", actor=ACTOR
    )
    relaxed = marks(db, "line-03", unit)
    assert relaxed[0] == after_fleet[0] and relaxed[1] is not None and relaxed[1] > own
    elsewhere.revoke_relaxation(
        relaxation.relaxation_id, reason="firmware updated ahead of plan", actor=ACTOR
    )
    revoked = marks(db, "line-03", unit)
    assert revoked[1] is not None and relaxed[1] is not None and revoked[1] > relaxed[1]


def test_an_enrollments_tightening_reaches_its_units_at_once(
    db: Database,
    clock: FixedClock,
    policy: PolicyService,
    line_03_member: tuple[str, str],
) -> None:
    member, outsider = line_03_member
    limits = PolicyLimits(policy, clock)
    assert (
        limits(PhysicalId(member)).allowed_networks == limits(PhysicalId(outsider)).allowed_networks
    )

    PolicyService(db, clock).set(
        "enrollment:line-03", {"allowed_networks": ["10.3.0.0/16"]}, actor=ACTOR
    )
    assert limits(PhysicalId(member)).allowed_networks == (ip_network("10.3.0.0/16"),)
    assert limits(PhysicalId(outsider)).allowed_networks != (ip_network("10.3.0.0/16"),)

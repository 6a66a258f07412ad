"""Change marks of policy scopes: numbers that move whenever a policy change to those scopes
commits, so a reader may keep what it resolved and resolve again only when a mark moves
(`deviceauth.policy_limits` does, per connection).

    select(..., change_mark(FLEET_KEY, scope_key(ScopeKind.ENROLLMENT, EnrollmentRow.name)))

A mark is the sequence number of the last audit entry of a policy change (`policy.*`) whose
subject is one of the scopes (`fleet`, `enrollment:<name>`, `device:<id>`); NULL when no
change ever named them -- then they set nothing and relax nothing. It cannot go stale:
every write of the policy tables records its change with the scope as the audit subject in
the same transaction (`PolicyService`), and audit sequence numbers are handed out under the
lock of the audit head, held until commit, so they grow in commit order: a snapshot that
misses a change reads a smaller mark than any snapshot that sees it. A relaxation lapsing by
the clock moves no mark: `EffectivePolicy.valid_until` says when that happens. Reads only
the audit entries of those subjects (policy changes: few), by index.
"""

from __future__ import annotations

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    SQLColumnExpression,
    String,
    func,
    literal,
    or_,
    select,
)

from devicetrust.policy.scopes import FLEET, ScopeKind
from devicetrust.store.models import AuditEntryRow

# Every policy change's audit action starts with "policy." ("/" sorts right after "."), so a
# new kind of change is covered without being listed here (tests pin the event names).
POLICY_ACTIONS = ("policy.", "policy/")
FLEET_KEY = literal(FLEET.key, String)


def scope_key(kind: ScopeKind, ref: SQLColumnExpression[str]) -> ColumnElement[str]:
    """The key of the scope of `kind` named by the column `ref` (not for the fleet)."""
    return literal(f"{kind.value}:", String) + ref


def change_mark(*scopes: SQLColumnExpression[str]) -> ScalarSelect[int | None]:
    """The change mark of the scopes whose keys `scopes` give, as a scalar subquery."""
    subject = AuditEntryRow.subject
    return (
        select(func.max(AuditEntryRow.seq))
        .where(
            or_(*(subject == scope for scope in scopes)),
            AuditEntryRow.action >= POLICY_ACTIONS[0],
            AuditEntryRow.action < POLICY_ACTIONS[1],
        )
        .scalar_subquery()
    )

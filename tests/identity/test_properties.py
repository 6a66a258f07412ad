"""Property test: random sequences of bind/rename/replace/transfer/decommission keep the
registry's invariants: one holder per logical identity, one logical identity per unit,
and each identity's history is a sequence of non-overlapping intervals."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from devicetrust.domain import DeviceState, DeviceTrustError, FixedClock, ReplacementFate
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.store.database import Database
from devicetrust.store.models import BindingRow

OPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "bind",
                "unbind",
                "rename",
                "replace",
                "transfer",
                "decommission",
                "quarantine",
                "release",
            ]
        ),
        st.integers(0, 3),
        st.integers(0, 5),
    ),
    max_size=25,
)
_round = itertools.count()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_invariants_hold(
    sqlite_db: Database, clock: FixedClock, ops: list[tuple[str, int, int]]
) -> None:
    svc = IdentityService(sqlite_db, clock)
    r = next(_round)
    names = [f"r{r}-line-{i}" for i in range(4)]
    for name in names:
        svc.create_logical(name, actor="t")
    units = [u.physical_id for u in svc.register_batch([UnitSpec("arm", {})] * 6, actor="t")]
    current = list(names)
    for op, li, ui in ops:
        clock.advance(timedelta(minutes=1))
        name, unit = current[li], units[ui]
        try:
            if op == "bind":
                svc.bind(name, unit, actor="t")
            elif op == "unbind":
                svc.unbind(name, actor="t")
            elif op == "rename":
                current[li] = f"{name}-x"
                try:
                    svc.rename(name, current[li], actor="t")
                except DeviceTrustError:
                    current[li] = name
                    raise
            elif op == "replace":
                svc.replace(name, unit, actor="t", fate=ReplacementFate.QUARANTINED)
            elif op == "transfer":
                svc.transfer(name, unit, actor="t")
            elif op == "decommission":
                svc.set_state(unit, DeviceState.DECOMMISSIONED, actor="t")
            elif op == "quarantine":
                svc.set_state(unit, DeviceState.QUARANTINED, actor="t")
            else:
                svc.set_state(unit, DeviceState.ACTIVE, actor="t", release=True)
        except DeviceTrustError:
            pass  # refusals are fine; invariants are checked below
    _check_invariants(sqlite_db, units)


def _check_invariants(db: Database, units: list[str]) -> None:
    with db.transaction() as s:
        rows = (
            s.execute(
                select(BindingRow).where(BindingRow.physical_id.in_(units)).order_by(BindingRow.id)
            )
            .scalars()
            .all()
        )
    by_logical: dict[str, list[BindingRow]] = defaultdict(list)
    by_unit: dict[str, list[BindingRow]] = defaultdict(list)
    for row in rows:
        by_logical[row.logical_id].append(row)
        by_unit[row.physical_id].append(row)
    for group in [*by_logical.values(), *by_unit.values()]:
        assert sum(1 for b in group if b.ended_at is None) <= 1
        ordered = sorted(group, key=lambda b: (b.started_at, b.id))
        for before, after in itertools.pairwise(ordered):
            assert before.ended_at is not None and before.ended_at <= after.started_at

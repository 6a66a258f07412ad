"""Stateful property test of the binding history, through `IdentityService` on SQLite.

Hypothesis drives random sequences of bind / unbind / rename / replace / transfer /
decommission / quarantine / release over a few names and units, and after every step
checks what tests/identity/test_properties.py does not:

- a refused operation (any `DeviceTrustError`) changed no row of any table;
- an accepted one did what it says: the holder, the unit's state, the old unit's fate, and
  for replace/transfer a contiguous hand-over (the old binding ends at the very instant the
  new one starts: no gap, no overlap);
- every accepted operation appended to the audit chain, and the chain verifies;
- invariants: one holder per logical identity, one logical identity per unit, no binding on
  a decommissioned unit, each history a sequence of disjoint intervals, and `holder_at`
  agrees with the history at every boundary;
- renames keep the identity: history by any former name is the history by the new name.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from devicetrust.domain import DeviceState, DeviceTrustError, FixedClock, ReplacementFate
from devicetrust.domain.records import Binding
from devicetrust.events.audit import AuditLog
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.store.database import Database, sqlite_url
from devicetrust.store.migrate import upgrade
from tests.conftest import snapshot_tables

NAMES = 3
UNITS = 5
ACTOR = "operator:property"
STEPS: Counter[str] = Counter()  # printed at the end (`-s`) for docs/security.md
names = st.integers(0, NAMES - 1)
units = st.integers(0, UNITS - 1)


class BindingHistory(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="binding-history-"))
        self.db = Database(sqlite_url(self.root / "devicetrust.db"))
        upgrade(self.db)
        self.clock = FixedClock(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
        self.svc = IdentityService(self.db, self.clock)
        self.audit = AuditLog(self.db)
        self.names = [f"line-{i}" for i in range(NAMES)]
        self.former: list[list[str]] = [[] for _ in range(NAMES)]
        for name in self.names:
            self.svc.create_logical(name, actor=ACTOR)
        created = self.svc.register_batch([UnitSpec("arm", {})] * UNITS, actor=ACTOR)
        self.units = [u.physical_id for u in created]
        self.renames = itertools.count()
        self.accepted = 0
        self.refused = 0

    def teardown(self) -> None:
        STEPS.update(accepted=self.accepted, refused=self.refused, machines=1)
        self.db.dispose()
        shutil.rmtree(self.root, ignore_errors=True)

    # ---- driving ----------------------------------------------------------------------

    def _step(self, action: Callable[[], object]) -> bool:
        """Run one operation a minute after the last; True if accepted. A refusal must
        leave every table as it was; an acceptance must extend the audit chain."""
        self.clock.advance(timedelta(minutes=1))
        before = snapshot_tables(self.db)
        head = self.audit.verify().head_seq
        try:
            action()
        except DeviceTrustError:
            assert snapshot_tables(self.db) == before
            self.refused += 1
            return False
        assert self.audit.verify().head_seq > head
        self.accepted += 1
        return True

    def _holder(self, n: int) -> str | None:
        return self.svc.get_logical(self.names[n]).physical_id

    def _state(self, u: int) -> DeviceState:
        return self.svc.get_physical(self.units[u]).state

    @rule(n=names, u=units)
    def bind(self, n: int, u: int) -> None:
        if self._step(lambda: self.svc.bind(self.names[n], self.units[u], actor=ACTOR)):
            assert self._holder(n) == self.units[u]
            assert self.svc.get_physical(self.units[u]).logical_name == self.names[n]

    @rule(n=names)
    def unbind(self, n: int) -> None:
        if self._step(lambda: self.svc.unbind(self.names[n], actor=ACTOR)):
            assert self._holder(n) is None

    @rule(n=names)
    def rename(self, n: int) -> None:
        old, new = self.names[n], f"line-renamed-{next(self.renames)}"
        if self._step(lambda: self.svc.rename(old, new, actor=ACTOR)):
            self.former[n].append(old)
            self.names[n] = new

    @rule(n=names, u=units, quarantine=st.booleans())
    def replace(self, n: int, u: int, quarantine: bool) -> None:
        fate = ReplacementFate.QUARANTINED if quarantine else ReplacementFate.DECOMMISSIONED
        old = self._holder(n)
        name = self.names[n]
        if self._step(lambda: self.svc.replace(name, self.units[u], actor=ACTOR, fate=fate)):
            assert old is not None and self._holder(n) == self.units[u]
            assert self.svc.get_physical(old).state.value == fate.value
            self._assert_handed_over(n, old, self.units[u])

    @rule(n=names, u=units)
    def transfer(self, n: int, u: int) -> None:
        old = self._holder(n)
        if self._step(lambda: self.svc.transfer(self.names[n], self.units[u], actor=ACTOR)):
            assert old is not None and self._holder(n) == self.units[u]
            self._assert_handed_over(n, old, self.units[u])

    @rule(u=units, state=st.sampled_from([DeviceState.DECOMMISSIONED, DeviceState.QUARANTINED]))
    def set_state(self, u: int, state: DeviceState) -> None:
        if self._step(lambda: self.svc.set_state(self.units[u], state, actor=ACTOR)):
            assert self._state(u) is state

    @rule(u=units)
    def release(self, u: int) -> None:
        unit = self.units[u]
        if self._step(
            lambda: self.svc.set_state(unit, DeviceState.ACTIVE, actor=ACTOR, release=True)
        ):
            assert self._state(u) is not DeviceState.QUARANTINED

    def _assert_handed_over(self, n: int, old: str, new: str) -> None:
        *_, ended, started = self.svc.history_of_logical(self.names[n])
        assert (ended.physical_id, started.physical_id) == (old, new)
        assert ended.ended_at == started.started_at == self.clock.now()

    # ---- what must always hold --------------------------------------------------------

    @invariant()
    def one_holder_per_identity_and_disjoint_history(self) -> None:
        for n, name in enumerate(self.names):
            history = self.svc.history_of_logical(name)
            _assert_disjoint(history)
            holder = self._holder(n)
            open_ = [b.physical_id for b in history if b.ended_at is None]
            assert open_ == ([holder] if holder else [])
            for former in self.former[n]:
                assert self.svc.history_of_logical(former) == history
            for binding in history:
                found = self.svc.holder_at(name, binding.started_at)
                assert found is not None and found.physical_id == binding.physical_id
                if binding.ended_at is not None:
                    after = self.svc.holder_at(name, binding.ended_at)
                    assert after is None or after.started_at == binding.ended_at

    @invariant()
    def one_identity_per_unit_and_none_when_decommissioned(self) -> None:
        for u, unit in enumerate(self.units):
            history = self.svc.history_of_physical(unit)
            _assert_disjoint(history)
            open_ = [b for b in history if b.ended_at is None]
            assert len(open_) <= 1
            if self._state(u) is DeviceState.DECOMMISSIONED:
                assert not open_

    @invariant()
    def audit_chain_verifies(self) -> None:
        assert self.audit.verify().ok


def _assert_disjoint(history: list[Binding]) -> None:
    for before, after in itertools.pairwise(history):
        assert before.ended_at is not None
        assert before.ended_at <= after.started_at


@pytest.fixture(scope="module", autouse=True)
def _print_steps() -> Iterator[None]:
    yield
    print(f"\nbinding history: {dict(STEPS)}")


_SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}


class TestBindingHistory(BindingHistory.TestCase):  # type: ignore[misc,valid-type]
    settings = settings(max_examples=15, stateful_step_count=20, **_SETTINGS)


@pytest.mark.slow
@pytest.mark.timeout(1800)
class TestBindingHistoryLong(BindingHistory.TestCase):  # type: ignore[misc,valid-type]
    settings = settings(max_examples=100, stateful_step_count=30, **_SETTINGS)

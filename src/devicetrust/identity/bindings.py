"""Binding operations: bind, unbind, transfer and the atomic replacement of a unit.

Invariants (also enforced by partial unique indexes): a logical identity has at most one
holder, a unit holds at most one logical identity, and bindings of a logical identity form
a contiguous-or-gapped sequence of non-overlapping intervals.

Concurrency: every operation locks the logical identity row first, then the unit rows in
sorted order, so two operations on the same identity serialise and cannot deadlock.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from devicetrust.domain.attributes import clean_reason
from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import Conflict, InvalidInput
from devicetrust.domain.events import EventType
from devicetrust.domain.ids import LogicalName, PhysicalId, parse_logical_name, parse_physical_id
from devicetrust.domain.lifecycle import (
    DeviceState,
    ReplacementFate,
    can_hold_binding,
    check_transition,
)
from devicetrust.domain.records import Binding, Replacement
from devicetrust.identity import _rows
from devicetrust.store.database import Database
from devicetrust.store.journal import record
from devicetrust.store.models import BindingRow, LogicalIdentityRow, PhysicalIdentityRow
from devicetrust.store.registry import physical_row


class _Unread(enum.Enum):
    """The unit's open binding was not read with its lock: `_open_binding` reads it."""

    UNREAD = "unread"


UNREAD = _Unread.UNREAD


class BindingOps:
    _db: Database
    _clock: Clock

    def bind(
        self, name: str, physical_id: str, *, actor: str, reason: str = "provisioned"
    ) -> Binding:
        """Give a free, live unit a free logical identity; a manufactured unit becomes
        provisioned."""
        reason = clean_reason(reason)
        now = self._clock.now()
        with self._db.transaction() as session:
            logical = _rows.logical_row(session, name, now, lock=True)
            unit = physical_row(session, physical_id, lock=True)
            self._check_free(session, logical)
            return self._bound(session, logical, unit, now=now, actor=actor, reason=reason)

    def bind_creating(
        self, name: str, physical_id: str, *, actor: str, reason: str = "provisioned"
    ) -> Binding:
        """`bind`, creating the logical identity first (no attributes, `logical.created`)
        when no identity has that name: what allocation does with a name, in one step and
        fewer round trips than `create_logical` then `bind` (a new name costs one INSERT;
        the unit is locked and its binding read in one SELECT). A name still resolving to a
        renamed identity is refused as `create_logical` refuses it. A race for the name is
        refused before anything is written (`identity.already_bound`): a concurrent
        creation of the same name is waited for at its unique index, then found bound."""
        lname = parse_logical_name(name)
        reason = clean_reason(reason)
        now = self._clock.now()
        with self._db.transaction() as session:
            logical = _rows.add_logical_if_free(session, lname, now=now, actor=actor)
            if logical is None:
                logical = session.execute(
                    select(LogicalIdentityRow)
                    .where(LogicalIdentityRow.name == lname)
                    .with_for_update()
                ).scalar_one_or_none()
                if logical is None:  # not created: the name is in a rename's grace
                    _rows.check_not_in_grace(session, lname, now)
                    raise Conflict(
                        "identity.already_bound", f"{lname!r} was renamed away meanwhile"
                    )
                self._check_free(session, logical)
            unit, held = _rows.locked_unit(session, physical_id)
            return self._bound(
                session, logical, unit, now=now, actor=actor, reason=reason, held=held
            )

    def _bound(
        self,
        session: Session,
        logical: LogicalIdentityRow,
        unit: PhysicalIdentityRow,
        *,
        now: datetime,
        actor: str,
        reason: str,
        held: BindingRow | _Unread | None = UNREAD,
    ) -> Binding:
        """Open the binding of `unit` to `logical` and record `device.bound`."""
        row = self._open_binding(
            session, logical, unit, now=now, actor=actor, reason=reason, held=held
        )
        record(
            session,
            at=now,
            actor=actor,
            event_type=EventType.DEVICE_BOUND,
            subject=logical.name,
            payload={"name": logical.name, "logical_id": logical.id, "physical_id": unit.id},
        )
        return _rows.to_binding(row, LogicalName(logical.name))

    @staticmethod
    def _check_free(session: Session, logical: LogicalIdentityRow) -> None:
        holder = _rows.open_binding_of_logical(session, logical.id)
        if holder is not None:
            raise Conflict(
                "identity.already_bound",
                f"{logical.name!r} is held by {holder.physical_id}; use replace or transfer",
                name=logical.name,
                physical_id=holder.physical_id,
            )

    def unbind(self, name: str, *, actor: str, reason: str = "unbound") -> Binding:
        reason = clean_reason(reason)
        now = self._clock.now()
        with self._db.transaction() as session:
            logical = _rows.logical_row(session, name, now, lock=True)
            row = self._require_holder(session, logical)
            self._close_binding(row, now=now, actor=actor, reason=reason)
            _rows.count_release(session)
            record(
                session,
                at=now,
                actor=actor,
                event_type=EventType.DEVICE_UNBOUND,
                subject=logical.name,
                payload={"name": logical.name, "physical_id": row.physical_id, "reason": reason},
            )
            return _rows.to_binding(row, LogicalName(logical.name))

    def transfer(self, name: str, to_physical_id: str, *, actor: str) -> Binding:
        """Move a logical identity to another live unit; the former holder stays live, unbound."""
        now = self._clock.now()
        with self._db.transaction() as session:
            logical = _rows.logical_row(session, name, now, lock=True)
            current = self._require_holder(session, logical)
            new_unit = self._lock_pair(session, current.physical_id, to_physical_id)[1]
            self._close_binding(current, now=now, actor=actor, reason="transferred")
            session.flush()
            row = self._open_binding(
                session, logical, new_unit, now=now, actor=actor, reason="transferred"
            )
            record(
                session,
                at=now,
                actor=actor,
                event_type=EventType.DEVICE_TRANSFERRED,
                subject=logical.name,
                payload={
                    "name": logical.name,
                    "from_physical_id": current.physical_id,
                    "to_physical_id": new_unit.id,
                },
            )
            return _rows.to_binding(row, LogicalName(logical.name))

    def replace(
        self,
        name: str,
        new_physical_id: str,
        *,
        actor: str,
        old_physical_id: str | None = None,
        fate: ReplacementFate = ReplacementFate.DECOMMISSIONED,
        reason: str = "replaced",
    ) -> Replacement:
        """Atomically: end the old unit's binding, bind the new unit, move the old unit to
        `fate`, and record `device.replaced`.

        `old_physical_id` is the unit the caller means to replace; when omitted it is the
        holder observed before the transaction starts. Either way the transaction re-checks
        it under lock, so of two concurrent replacements of the same unit only one succeeds.
        """
        reason = clean_reason(reason)
        expected_old = (
            parse_physical_id(old_physical_id) if old_physical_id else self._observe_holder(name)
        )
        new_id = parse_physical_id(new_physical_id)
        if new_id == expected_old:
            raise InvalidInput("identity.replace_same_unit", "a unit cannot replace itself")
        now = self._clock.now()
        with self._db.transaction() as session:
            logical = _rows.logical_row(session, name, now, lock=True)
            current = self._require_holder(session, logical)
            if current.physical_id != expected_old:
                raise Conflict(
                    "identity.replacement_conflict",
                    f"{logical.name!r} is held by {current.physical_id}, not {expected_old}: "
                    "it was changed concurrently",
                    name=logical.name,
                    holder=current.physical_id,
                )
            old_unit, new_unit = self._lock_pair(session, expected_old, new_id)
            self._close_binding(current, now=now, actor=actor, reason=reason)
            target = DeviceState(fate.value)
            self._change_state(
                session, old_unit, target, now=now, actor=actor, reason=reason, end_binding=False
            )
            session.flush()
            self._open_binding(session, logical, new_unit, now=now, actor=actor, reason=reason)
            event = record(
                session,
                at=now,
                actor=actor,
                event_type=EventType.DEVICE_REPLACED,
                subject=logical.name,
                payload={
                    "name": logical.name,
                    "logical_id": logical.id,
                    "old_physical_id": old_unit.id,
                    "new_physical_id": new_unit.id,
                    "old_unit_state": target.value,
                    "reason": reason,
                },
            )
            return Replacement(
                logical_name=LogicalName(logical.name),
                old_physical_id=PhysicalId(old_unit.id),
                new_physical_id=PhysicalId(new_unit.id),
                old_unit_state=target,
                at=now,
                event_id=event.event_id,
            )

    # ---- shared steps --------------------------------------------------------------------

    def _observe_holder(self, name: str) -> PhysicalId:
        with self._db.read() as session:
            logical = _rows.logical_row(session, name, self._clock.now())
            return PhysicalId(self._require_holder(session, logical).physical_id)

    @staticmethod
    def _require_holder(session: Session, logical: LogicalIdentityRow) -> BindingRow:
        row = _rows.open_binding_of_logical(session, logical.id)
        if row is None:
            raise Conflict(
                "identity.not_bound", f"{logical.name!r} is not held by any unit", name=logical.name
            )
        return row

    @staticmethod
    def _lock_pair(
        session: Session, old_id: str, new_id: str
    ) -> tuple[PhysicalIdentityRow, PhysicalIdentityRow]:
        first, second = sorted((old_id, new_id))
        locked = {
            first: physical_row(session, first, lock=True),
            second: physical_row(session, second, lock=True),
        }
        return locked[old_id], locked[new_id]

    def _open_binding(
        self,
        session: Session,
        logical: LogicalIdentityRow,
        unit: PhysicalIdentityRow,
        *,
        now: datetime,
        actor: str,
        reason: str,
        held: BindingRow | _Unread | None = UNREAD,
    ) -> BindingRow:
        """`held` is the unit's open binding when the caller read it with the unit's lock."""
        state = DeviceState(unit.state)
        if not can_hold_binding(state):
            raise Conflict(
                "identity.unit_not_live",
                f"unit {unit.id} is {state.value} and cannot take a logical identity",
                physical_id=unit.id,
                state=state.value,
            )
        if isinstance(held, _Unread):
            held = _rows.open_binding_of_physical(session, unit.id)
        if held is not None:
            raise Conflict(
                "identity.unit_already_bound",
                f"unit {unit.id} already holds {_rows.current_name_of(session, held.logical_id)!r}",
                physical_id=unit.id,
            )
        row = BindingRow(
            logical_id=logical.id,
            physical_id=unit.id,
            name_at_start=logical.name,
            started_at=now,
            start_reason=reason,
            started_by=actor,
        )
        session.add(row)
        if state is DeviceState.MANUFACTURED:
            self._change_state(
                session, unit, DeviceState.PROVISIONED, now=now, actor=actor, reason=reason
            )
        return row

    @staticmethod
    def _close_binding(row: BindingRow, *, now: datetime, actor: str, reason: str) -> None:
        row.ended_at = now
        row.end_reason = reason
        row.ended_by = actor

    def _change_state(
        self,
        session: Session,
        unit: PhysicalIdentityRow,
        target: DeviceState,
        *,
        now: datetime,
        actor: str,
        reason: str,
        releasing: bool = False,
        end_binding: bool = True,
    ) -> None:
        current = DeviceState(unit.state)
        check_transition(current, target, releasing=releasing)
        if target is DeviceState.QUARANTINED:
            unit.quarantined_from = current.value
        elif current is DeviceState.QUARANTINED:
            unit.quarantined_from = None
        unit.state = target.value
        unit.updated_at = now
        if target is DeviceState.DECOMMISSIONED and end_binding:
            held = _rows.open_binding_of_physical(session, unit.id)
            if held is not None:
                self._close_binding(held, now=now, actor=actor, reason="decommissioned")
                _rows.count_release(session)
        record(
            session,
            at=now,
            actor=actor,
            event_type=EventType.DEVICE_STATE_CHANGED,
            subject=unit.id,
            payload={
                "physical_id": unit.id,
                "from": current.value,
                "to": target.value,
                "reason": reason,
            },
        )

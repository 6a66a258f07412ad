"""History queries: who held a logical identity when, and what a unit held."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select

from devicetrust.domain.clock import Clock
from devicetrust.domain.ids import LogicalName
from devicetrust.domain.records import Binding
from devicetrust.identity import _rows
from devicetrust.store.database import Database
from devicetrust.store.models import BindingRow, LogicalIdentityRow
from devicetrust.store.registry import physical_row


class HistoryQueries:
    _db: Database
    _clock: Clock

    def history_of_logical(self, name: str) -> list[Binding]:
        """Every binding of a logical identity (by current or former name), oldest first."""
        with self._db.read() as session:
            logical = _rows.logical_row(session, name, self._clock.now())
            rows = session.execute(
                select(BindingRow)
                .where(BindingRow.logical_id == logical.id)
                .order_by(BindingRow.started_at, BindingRow.id)
            ).scalars()
            return [_rows.to_binding(row, LogicalName(logical.name)) for row in rows]

    def holder_at(self, name: str, at: datetime) -> Binding | None:
        """Which unit was `name` at time `at` (None if nobody held it then)."""
        with self._db.read() as session:
            logical = _rows.logical_row(session, name, self._clock.now())
            row = session.execute(
                select(BindingRow)
                .where(
                    BindingRow.logical_id == logical.id,
                    BindingRow.started_at <= at,
                    or_(BindingRow.ended_at.is_(None), BindingRow.ended_at > at),
                )
                .order_by(BindingRow.started_at.desc(), BindingRow.id.desc())
                .limit(1)
            ).scalar_one_or_none()
            return _rows.to_binding(row, LogicalName(logical.name)) if row else None

    def history_of_physical(self, physical_id: str) -> list[Binding]:
        """Every logical identity a unit held, oldest first."""
        with self._db.read() as session:
            unit = physical_row(session, physical_id)
            rows = session.execute(
                select(BindingRow, LogicalIdentityRow.name)
                .join(LogicalIdentityRow, LogicalIdentityRow.id == BindingRow.logical_id)
                .where(BindingRow.physical_id == unit.id)
                .order_by(BindingRow.started_at, BindingRow.id)
            ).all()
            return [_rows.to_binding(row, LogicalName(name)) for row, name in rows]

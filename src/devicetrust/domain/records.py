"""Read-only views of registry records, as services return them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from devicetrust.domain.ids import LogicalName, PhysicalId
from devicetrust.domain.lifecycle import DeviceState


def _json_ready(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class PhysicalIdentity:
    physical_id: PhysicalId
    model: str
    state: DeviceState
    manufactured_at: datetime
    hardware_serials: Mapping[str, str] = field(default_factory=dict)
    key_fingerprints: tuple[str, ...] = ()
    logical_name: LogicalName | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = _json_ready(asdict(self))
        return out


@dataclass(frozen=True, slots=True)
class LogicalIdentity:
    logical_id: str
    name: LogicalName
    attributes: Mapping[str, Any]
    created_at: datetime
    physical_id: PhysicalId | None = None
    former_names: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = _json_ready(asdict(self))
        return out


@dataclass(frozen=True, slots=True)
class Binding:
    """One interval during which a physical unit held a logical identity."""

    logical_id: str
    logical_name: LogicalName
    name_at_start: str
    physical_id: PhysicalId
    started_at: datetime
    start_reason: str
    started_by: str
    ended_at: datetime | None = None
    end_reason: str | None = None
    ended_by: str | None = None

    def covers(self, at: datetime) -> bool:
        return self.started_at <= at and (self.ended_at is None or at < self.ended_at)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = _json_ready(asdict(self))
        return out


@dataclass(frozen=True, slots=True)
class Replacement:
    logical_name: LogicalName
    old_physical_id: PhysicalId
    new_physical_id: PhysicalId
    old_unit_state: DeviceState
    at: datetime
    event_id: str

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = _json_ready(asdict(self))
        return out

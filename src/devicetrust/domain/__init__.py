"""Pure domain types and rules: identities, bindings, states, events, errors.

Never imports an I/O library (database, network, clock of the OS outside `Clock`).
"""

from devicetrust.domain.clock import Clock, FixedClock, SystemClock
from devicetrust.domain.errors import (
    Conflict,
    DeviceTrustError,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    NotFound,
    Unauthorized,
)
from devicetrust.domain.events import EventType
from devicetrust.domain.ids import (
    LogicalName,
    PhysicalId,
    new_physical_id,
    parse_logical_name,
    parse_physical_id,
)
from devicetrust.domain.lifecycle import DeviceState, ReplacementFate, check_transition

__all__ = [
    "Clock",
    "Conflict",
    "DeviceState",
    "DeviceTrustError",
    "EventType",
    "FixedClock",
    "Forbidden",
    "InvalidInput",
    "InvalidTransition",
    "LogicalName",
    "NotFound",
    "PhysicalId",
    "ReplacementFate",
    "SystemClock",
    "Unauthorized",
    "check_transition",
    "new_physical_id",
    "parse_logical_name",
    "parse_physical_id",
]

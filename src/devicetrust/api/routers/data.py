"""What the fleet reported, over HTTP: diagnostics by logical identity, telemetry by unit.

    GET /v1/data/diagnostics/{logical_name}?since=1h&until=&limit=100   (data:read)
    GET /v1/data/telemetry/{physical_id}?since=2026-11-25T08:00Z        (data:read)

Diagnostics follow the logical identity across replacements (one continuous history);
telemetry is one unit's only. Both newest first. `since` / `until` are an ISO 8601 time with
a timezone or a duration back from now (`1h`, `30m`, `2d`). Read-only: handlers only
translate, the message store decides.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from devicetrust.api.platform import PlatformDep
from devicetrust.api.security import requires
from devicetrust.auth import ApiKey, Scope
from devicetrust.ingest.records import StoredMessage
from devicetrust.ingest.store import MAX_QUERY, MessageStore
from devicetrust.ingest.window import window

router = APIRouter(prefix="/v1/data", tags=["data"])

Reader = Annotated[ApiKey, requires(Scope.DATA_READ)]
NamePath = Annotated[
    str, Path(min_length=1, max_length=128, description="the logical identity (or a former name)")
]
PhysicalIdPath = Annotated[str, Path(min_length=1, max_length=64, description="the unit's id")]
_BOUND = "ISO 8601 time with a timezone, or a duration back from now (1h, 30m, 2d)"
Since = Annotated[
    str | None, Query(min_length=1, max_length=64, description=f"from (inclusive): {_BOUND}")
]
Until = Annotated[
    str | None, Query(min_length=1, max_length=64, description=f"to (exclusive): {_BOUND}")
]
Limit = Annotated[int, Query(ge=1, le=MAX_QUERY, description="at most this many, newest first")]


class MessageOut(BaseModel):
    kind: str = Field(description="diagnostics | telemetry")
    physical_id: str = Field(description="the unit that sent it (its proven credential)")
    logical_name: str | None = Field(description="the identity's name when it arrived")
    message_key: str = Field(description="the device's msg-id, else SHA-256 of the payload")
    received_at: datetime
    payload: dict[str, Any]

    @classmethod
    def of(cls, message: StoredMessage) -> MessageOut:
        return cls(
            kind=message.kind.value,
            physical_id=message.physical_id,
            logical_name=message.logical_name,
            message_key=message.message_key,
            received_at=message.received_at,
            payload=message.payload,
        )


class MessagePage(BaseModel):
    items: list[MessageOut]


def _store(platform: PlatformDep) -> MessageStore:
    return MessageStore(platform.db, platform.clock)


StoreDep = Annotated[MessageStore, Depends(_store)]


@router.get("/diagnostics/{logical_name}", summary="Diagnostics of a logical identity")
def diagnostics(
    _key: Reader,
    platform: PlatformDep,
    store: StoreDep,
    logical_name: NamePath,
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
) -> MessagePage:
    start, end = window(since, until, platform.clock.now())
    found = store.diagnostics_of(logical_name, since=start, until=end, limit=limit)
    return MessagePage(items=[MessageOut.of(m) for m in found])


@router.get("/telemetry/{physical_id}", summary="Telemetry of one unit")
def telemetry(
    _key: Reader,
    platform: PlatformDep,
    store: StoreDep,
    physical_id: PhysicalIdPath,
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
) -> MessagePage:
    start, end = window(since, until, platform.clock.now())
    unit = platform.identity.get_physical(physical_id)  # 404 for a unit never registered
    found = store.telemetry_of(unit.physical_id, since=start, until=end, limit=limit)
    return MessagePage(items=[MessageOut.of(m) for m in found])

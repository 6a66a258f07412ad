"""Feedback to devices over HTTP: queue a message for a logical identity, follow its status.

    POST /v1/feedback/{logical_name}     {"payload": {...}, "ttl": "1h"}   (data:write) 201
    GET  /v1/feedback/{feedback_id}      one message and its status        (data:read)
    GET  /v1/feedback?logical_name=...   an identity's feedback, newest    (data:read)

A message is addressed to the logical identity and routed, when it is published, to the unit
that holds it then; it waits (with its time to live) while nobody holds it or the holder is
offline. Status: `pending` -> `published` (the gateway or broker took it) -> `delivered`
(the device acknowledged it, embedded gateway: `delivered_at`), or `expired`. Sending is
audited (`feedback.sent`: who, to which identity and unit, the payload's keys and size --
never its values). Handlers only translate: the feedback queue checks, writes and audits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from devicetrust.api.platform import PlatformDep
from devicetrust.api.security import requires
from devicetrust.auth import ApiKey, Scope
from devicetrust.ingest.feedback import FeedbackQueue
from devicetrust.ingest.records import Feedback
from devicetrust.ingest.window import lifetime

router = APIRouter(prefix="/v1/feedback", tags=["feedback"])

Reader = Annotated[ApiKey, requires(Scope.DATA_READ)]
Writer = Annotated[ApiKey, requires(Scope.DATA_WRITE)]
NamePath = Annotated[
    str, Path(min_length=1, max_length=128, description="the logical identity addressed")
]
FeedbackIdPath = Annotated[
    str,
    Path(
        min_length=36,
        max_length=36,
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="the id `POST` returned",
    ),
]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    payload: dict[str, Any] = Field(
        description="a JSON object (at most 16 KiB), published as the MQTT payload",
        examples=[{"speed": 0.8}],
    )
    ttl: str | int = Field(
        default="1h",
        description="how long it may wait for the device (up to 30 days): 1h, 30m, PT6H, "
        "or seconds",
        examples=["1h"],
    )


class FeedbackOut(BaseModel):
    feedback_id: str
    logical_name: str = Field(description="the identity's name when it was queued")
    payload: dict[str, Any]
    status: str = Field(description="pending | published | delivered | expired")
    created_at: datetime
    expires_at: datetime
    physical_id: str | None = Field(description="the unit it was published to")
    published_at: datetime | None
    delivered_at: datetime | None = Field(
        description="when the unit acknowledged it (QoS 1 PUBACK, embedded gateway)"
    )

    @classmethod
    def of(cls, feedback: Feedback) -> FeedbackOut:
        return cls(
            feedback_id=feedback.feedback_id,
            logical_name=feedback.logical_name,
            payload=feedback.payload,
            status=feedback.status.value,
            created_at=feedback.created_at,
            expires_at=feedback.expires_at,
            physical_id=feedback.physical_id,
            published_at=feedback.published_at,
            delivered_at=feedback.delivered_at,
        )


class FeedbackPage(BaseModel):
    items: list[FeedbackOut]


def _queue(platform: PlatformDep) -> FeedbackQueue:
    return FeedbackQueue(platform.db, platform.clock)


QueueDep = Annotated[FeedbackQueue, Depends(_queue)]


@router.post(
    "/{logical_name}",
    status_code=status.HTTP_201_CREATED,
    summary="Queue feedback for whichever unit holds a logical identity",
)
def send(key: Writer, queue: QueueDep, logical_name: NamePath, body: FeedbackIn) -> FeedbackOut:
    ttl = lifetime(body.ttl)
    sent = queue.send(logical_name, body.payload, actor=key.actor, ttl=ttl)
    return FeedbackOut.of(sent)


@router.get("/{feedback_id}", summary="One feedback message and its delivery status")
def show(_key: Reader, queue: QueueDep, feedback_id: FeedbackIdPath) -> FeedbackOut:
    return FeedbackOut.of(queue.get(feedback_id))


@router.get("", summary="Feedback addressed to a logical identity, newest first")
def listing(
    _key: Reader,
    queue: QueueDep,
    logical_name: Annotated[str, Query(min_length=1, max_length=128)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FeedbackPage:
    found = queue.list_for(logical_name, limit=limit)
    return FeedbackPage(items=[FeedbackOut.of(f) for f in found])

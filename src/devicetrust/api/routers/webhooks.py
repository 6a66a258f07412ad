"""Webhook subscriptions and their deliveries: add (the signing secret is in that one
response), list, read, delete; list deliveries and ask for one to be delivered again."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from devicetrust.api.platform import PlatformDep
from devicetrust.api.schemas import (
    DeliveryList,
    DeliveryOut,
    WebhookCreatedOut,
    WebhookIn,
    WebhookList,
    WebhookOut,
)
from devicetrust.api.security import requires
from devicetrust.auth import ApiKey, Scope
from devicetrust.events import DeliveryStatus

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

Reader = Annotated[ApiKey, requires(Scope.WEBHOOK_READ)]
Writer = Annotated[ApiKey, requires(Scope.WEBHOOK_WRITE)]
MAX_ROW_ID = 2**63 - 1  # BIGINT: a larger id is a bad request, not a database error


@router.post("", status_code=status.HTTP_201_CREATED, summary="Subscribe a URL to events")
def add(body: WebhookIn, key: Writer, platform: PlatformDep) -> WebhookCreatedOut:
    hook, secret = platform.webhooks.add(body.url, body.event_types, actor=key.actor)
    return WebhookCreatedOut(webhook=WebhookOut.of(hook), secret=secret)


@router.get("", summary="List webhooks (never their secrets)")
def list_webhooks(_key: Reader, platform: PlatformDep) -> WebhookList:
    return WebhookList(items=[WebhookOut.of(h) for h in platform.webhooks.list()])


# Declared before `/{webhook_id}` so that "deliveries" is never taken for a webhook id.
@router.get("/deliveries", summary="Recent deliveries, optionally by status")
def list_deliveries(
    _key: Reader,
    platform: PlatformDep,
    delivery_status: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    webhook_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    before_id: Annotated[
        int | None, Query(ge=1, le=MAX_ROW_ID, description="last id of the previous page")
    ] = None,
) -> DeliveryList:
    """Newest first; page with `before_id`."""
    found = platform.dispatcher.list_deliveries(
        status=delivery_status, limit=limit, webhook_id=webhook_id, before_id=before_id
    )
    return DeliveryList(items=[DeliveryOut.of(d) for d in found])


@router.post("/deliveries/{delivery_id}/redeliver", summary="Deliver again (now)")
def redeliver(
    delivery_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)], key: Writer, platform: PlatformDep
) -> DeliveryOut:
    return DeliveryOut.of(platform.dispatcher.redeliver(delivery_id, actor=key.actor))


@router.get("/{webhook_id}", summary="Read a webhook")
def get_webhook(webhook_id: str, _key: Reader, platform: PlatformDep) -> WebhookOut:
    return WebhookOut.of(platform.webhooks.get(webhook_id))


@router.delete("/{webhook_id}", summary="Delete a webhook and its pending deliveries")
def delete(webhook_id: str, key: Writer, platform: PlatformDep) -> WebhookOut:
    return WebhookOut.of(platform.webhooks.delete(webhook_id, actor=key.actor))

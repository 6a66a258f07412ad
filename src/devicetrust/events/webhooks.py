"""Webhook subscriptions: add, list, get, delete.

Owns the `webhooks` rows. The signing secret is created here from the CSPRNG, handed to the
caller once by `add`, and stored only sealed by the vault (aad = the webhook's id). It is never
returned again, logged, audited or put in an event. Every change is one transaction with its
audit entry and outbox event; bad input raises `InvalidInput` before anything is written.
"""

from __future__ import annotations

import base64
import builtins
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import delete, func, select

from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import InvalidInput, NotFound
from devicetrust.domain.events import EventType
from devicetrust.events._delivery import DeliveryStatus
from devicetrust.events._filters import parse_event_filters
from devicetrust.store.database import Database
from devicetrust.store.journal import record
from devicetrust.store.models import DeliveryRow, WebhookRow
from devicetrust.vault import Sealer

SECRET_PREFIX = "whsec_"  # noqa: S105 - a public marker, not a secret
SECRET_BYTES = 32
MAX_URL_LENGTH = 2048
_ALLOWED_SCHEMES = ("http", "https")


@dataclass(frozen=True, slots=True)
class Webhook:
    """A subscription as shown to operators; the signing secret is deliberately not here."""

    webhook_id: str
    url: str
    event_types: tuple[str, ...]
    enabled: bool
    created_at: datetime
    created_by: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.webhook_id,
            "url": self.url,
            "event_types": list(self.event_types),
            "enabled": self.enabled,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


def secret_aad(webhook_id: str) -> bytes:
    """What the sealed secret is bound to: it opens only for this webhook's row."""
    return f"webhook-secret:{webhook_id}".encode("ascii")


def validate_url(url: object) -> str:
    """An absolute http(s) URL with a host, no credentials, no fragment, printable ASCII
    (internationalised hosts in their `xn--` form)."""
    if not isinstance(url, str) or not url:
        raise InvalidInput("webhook.invalid_url", "the webhook url is a non-empty string")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(
            "webhook.url_too_long", f"the webhook url has at most {MAX_URL_LENGTH} characters"
        )
    if not url.isascii() or any(ch <= " " or ch == "\x7f" for ch in url):
        raise InvalidInput(
            "webhook.invalid_url",
            "the webhook url is printable ASCII without spaces (percent-encode the rest)",
        )
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError as exc:
        raise InvalidInput("webhook.invalid_url", f"not a valid url: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in _ALLOWED_SCHEMES:
        raise InvalidInput(
            "webhook.url_scheme_not_allowed",
            f"webhook urls use http or https, not {scheme or 'no scheme'!r}",
        )
    if not parts.hostname:
        raise InvalidInput("webhook.invalid_url", "the webhook url has no host")
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL would be stored, shown and audited in clear.
        raise InvalidInput(
            "webhook.url_has_credentials",
            "the webhook url must not carry user:password; receivers check the signature",
        )
    if parts.fragment or url.endswith("#"):
        raise InvalidInput("webhook.invalid_url", "the webhook url has no #fragment")
    if port == 0:
        raise InvalidInput("webhook.invalid_url", "port 0 is not a destination")
    return urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, ""))


def redacted_url(url: str) -> str:
    """The url without its query string, for audit entries and events (a query may carry a
    receiver's token, and the audit log keeps everything for ever)."""
    parts = urlsplit(url)
    query = "..." if parts.query else ""
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def parse_webhook_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidInput(
            "webhook.invalid_id", f"a webhook id is a UUID, got {str(value)[:64]!r}"
        ) from exc


def new_signing_secret() -> bytearray:
    """`whsec_` + base64url of 32 CSPRNG bytes, as ASCII in a bytearray the caller zeroes."""
    return bytearray(
        SECRET_PREFIX.encode("ascii")
        + base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=")
    )


def _to_webhook(row: WebhookRow) -> Webhook:
    return Webhook(
        webhook_id=row.id,
        url=row.url,
        event_types=tuple(str(t) for t in row.event_types),
        enabled=row.enabled,
        created_at=row.created_at,
        created_by=row.created_by,
    )


class WebhookService:
    def __init__(self, db: Database, clock: Clock, vault: Sealer) -> None:
        self._db = db
        self._clock = clock
        self._vault = vault

    def add(
        self, url: str, event_types: Iterable[str] | None = None, *, actor: str
    ) -> tuple[Webhook, str]:
        """Subscribe `url` to `event_types` (`None`: every event). Returns the webhook and its
        signing secret, which is shown this once and cannot be read back."""
        clean_url = validate_url(url)
        filters = parse_event_filters(event_types)
        webhook_id = str(uuid.uuid4())
        secret = new_signing_secret()
        try:
            sealed = self._vault.seal(secret, aad=secret_aad(webhook_id))
            secret_text = secret.decode("ascii")
        finally:
            secret[:] = bytes(len(secret))
        now = self._clock.now()
        row = WebhookRow(
            id=webhook_id,
            url=clean_url,
            event_types=list(filters),
            secret_sealed=sealed,
            enabled=True,
            created_at=now,
            created_by=actor,
        )
        with self._db.transaction() as session:
            session.add(row)
            record(
                session,
                at=now,
                actor=actor,
                event_type=EventType.WEBHOOK_CREATED,
                subject=webhook_id,
                payload={
                    "webhook_id": webhook_id,
                    "url": redacted_url(clean_url),
                    "event_types": list(filters),
                },
            )
        return _to_webhook(row), secret_text

    def list(self) -> builtins.list[Webhook]:
        stmt = select(WebhookRow).order_by(WebhookRow.created_at, WebhookRow.id)
        with self._db.read() as session:
            return [_to_webhook(row) for row in session.execute(stmt).scalars()]

    def get(self, webhook_id: str) -> Webhook:
        wid = parse_webhook_id(webhook_id)
        with self._db.read() as session:
            row = session.get(WebhookRow, wid)
            if row is None:
                raise NotFound("webhook.not_found", f"no webhook {wid}", id=wid)
            return _to_webhook(row)

    def delete(self, webhook_id: str, *, actor: str) -> Webhook:
        """Remove the subscription, its sealed secret and its delivery records; deliveries
        still pending are dropped (the audit log keeps the record of the webhook)."""
        wid = parse_webhook_id(webhook_id)
        now = self._clock.now()
        with self._db.transaction() as session:
            row = session.get(WebhookRow, wid, with_for_update=True)
            if row is None:
                raise NotFound("webhook.not_found", f"no webhook {wid}", id=wid)
            gone = _to_webhook(row)
            pending = session.execute(
                select(func.count())
                .select_from(DeliveryRow)
                .where(
                    DeliveryRow.webhook_id == wid,
                    DeliveryRow.status == DeliveryStatus.PENDING.value,
                )
            ).scalar_one()
            session.execute(delete(DeliveryRow).where(DeliveryRow.webhook_id == wid))
            session.delete(row)
            record(
                session,
                at=now,
                actor=actor,
                event_type=EventType.WEBHOOK_DELETED,
                subject=wid,
                payload={
                    "webhook_id": wid,
                    "url": redacted_url(gone.url),
                    "pending_deliveries_dropped": pending,
                },
            )
        return gone

"""Events leaving the platform: signed webhooks fed by the outbox, and the audit log.

Owns webhook subscriptions, their deliveries and the reading/verification of the audit hash
chain. Never sends a secret in clear over a channel other than the one-time answer to
`WebhookService.add`, and never changes an audit entry.

`devicetrust.events.signing` is what webhook receivers import, so importing this package
must not pull in a server dependency: the server-side names (database, HTTP client) load on
first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from devicetrust.events._delivery import Delivery, DeliveryReport, DeliveryStatus
from devicetrust.events.signing import SIGNATURE_HEADER, SignatureError, sign, verify

if TYPE_CHECKING:
    from devicetrust.events.audit import AuditLog, VerifyResult
    from devicetrust.events.dispatcher import Dispatcher
    from devicetrust.events.webhooks import Webhook, WebhookService

_SERVER_SIDE = {
    "AuditLog": "devicetrust.events.audit",
    "VerifyResult": "devicetrust.events.audit",
    "Dispatcher": "devicetrust.events.dispatcher",
    "Webhook": "devicetrust.events.webhooks",
    "WebhookService": "devicetrust.events.webhooks",
}

__all__ = [
    "SIGNATURE_HEADER",
    "AuditLog",
    "Delivery",
    "DeliveryReport",
    "DeliveryStatus",
    "Dispatcher",
    "SignatureError",
    "VerifyResult",
    "Webhook",
    "WebhookService",
    "sign",
    "verify",
]


def __getattr__(name: str) -> object:
    module = _SERVER_SIDE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""What every connection of one gateway shares (`Environment`), and the hooks through which
the rest of the platform hears about sessions and feedback (`GatewayHooks`).

Hooks run on the gateway's event loop and must not block it: a hook that needs the database
hands the work to a thread or a queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from devicetrust.deviceauth import AuthenticatedDevice
from devicetrust.domain.clock import Clock
from devicetrust.domain.ids import PhysicalId

from .acl import TopicLayout
from .codec import ReasonCode
from .config import GatewayConfig
from .credentials import DeviceAuthenticator
from .message_quota import MessageQuota
from .metrics import GatewayCounters
from .sessions import SessionRegistry
from .store_queue import StoreQueue


class GatewayHooks(Protocol):
    def connected(self, device: AuthenticatedDevice) -> None:
        """A device was accepted (CONNACK Success sent): e.g. push its queued feedback."""
        ...

    def disconnected(self, physical_id: PhysicalId) -> None: ...

    def feedback_acked(self, physical_id: PhysicalId, feedback_id: str) -> None:
        """The device acknowledged (PUBACK) the QoS 1 feedback `feedback_id`."""
        ...

    def refused(self, physical_id: PhysicalId, reason: ReasonCode, what: str) -> None:
        """An authenticated device was refused something: a client id or will that is not
        its own at CONNECT, a topic outside its own in PUBLISH or SUBSCRIBE (`what` names
        it, truncated). For the audit log; credential refusals are audited by deviceauth."""
        ...


class NoHooks:
    def connected(self, device: AuthenticatedDevice) -> None:
        return None

    def disconnected(self, physical_id: PhysicalId) -> None:
        return None

    def feedback_acked(self, physical_id: PhysicalId, feedback_id: str) -> None:
        return None

    def refused(self, physical_id: PhysicalId, reason: ReasonCode, what: str) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Environment:
    config: GatewayConfig
    layout: TopicLayout
    auth: DeviceAuthenticator
    auth_limit: asyncio.Semaphore
    store: StoreQueue
    sessions: SessionRegistry
    counters: GatewayCounters
    clock: Clock
    hooks: GatewayHooks
    open_connections: Callable[[], int]
    quota: MessageQuota | None = None  # the per-unit message rate; None: unlimited

"""`AsyncDeviceClient`: the same device client for asyncio code.

A thin shell over `DeviceClient`: blocking work (provisioning, connecting, waiting for
acknowledgements) runs in the default executor, and feedback reaches the event loop through
`loop.call_soon_threadsafe` into a bounded queue filled from the first `connect`, so
nothing blocks the loop and nothing is missed before iteration starts. Feedback is read with
`async for message in client.feedback(): ...` (or a callback).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Mapping
from pathlib import Path
from typing import Any

from devicetrust.device.client._attestation import Attestation
from devicetrust.device.client._client import DeviceClient
from devicetrust.device.client._connection import Feedback
from devicetrust.device.client._errors import DeviceClientError
from devicetrust.device.client._provisioning import provision
from devicetrust.device.client._state import DeviceState
from devicetrust.device.keystore import Keystore

_QUEUE_BOUND = 1000


class AsyncDeviceClient:
    """Use as `async with AsyncDeviceClient(...) as client:` (connects on entry)."""

    def __init__(
        self, data_dir: Path | str, keystore: Keystore, ca_bundle: Path | str,
        *, on_feedback: Callable[[Feedback], None] | None = None, **options: Any,
    ) -> None:
        self._user_callback = on_feedback
        self._inbox: asyncio.Queue[Feedback] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sync = DeviceClient(data_dir, keystore, ca_bundle, on_feedback=self._arrived,
                                  **options)

    @classmethod
    async def provision(
        cls, api_url: str, physical_id: str, attestation: Attestation, *,
        data_dir: Path | str, keystore: Keystore, ca_bundle: Path | str,
        max_wait: float = 300.0, **options: Any,
    ) -> AsyncDeviceClient:
        """Provision the unit, then return its (not yet connected) client."""
        await asyncio.to_thread(
            provision, api_url, physical_id, attestation, keystore=keystore,
            data_dir=Path(data_dir), ca_bundle=Path(ca_bundle), max_wait=max_wait,
        )
        return cls(data_dir, keystore, ca_bundle, attestation=attestation, **options)

    @property
    def sync(self) -> DeviceClient:
        """The underlying synchronous client (counters, state)."""
        return self._sync

    @property
    def state(self) -> DeviceState:
        return self._sync.state

    @property
    def connected(self) -> bool:
        return self._sync.connected

    @property
    def pending(self) -> int:
        return self._sync.pending

    async def connect(self, timeout: float = 30.0) -> bool:
        """Start and wait for the connection; feedback is kept for `feedback()` from now."""
        if self._inbox is None:
            self._loop = asyncio.get_running_loop()
            self._inbox = asyncio.Queue(maxsize=_QUEUE_BOUND)
        return await asyncio.to_thread(self._sync.connect, timeout)

    async def publish_diagnostics(
        self, payload: Mapping[str, Any] | bytes, *, content_type: str = "application/json",
        msg_id: str | None = None,
    ) -> str:
        return await asyncio.to_thread(
            self._sync.publish_diagnostics, payload, content_type=content_type, msg_id=msg_id)

    async def publish_telemetry(
        self, payload: Mapping[str, Any] | bytes, *, content_type: str = "application/json",
        msg_id: str | None = None,
    ) -> str:
        return await asyncio.to_thread(
            self._sync.publish_telemetry, payload, content_type=content_type, msg_id=msg_id)

    async def flush(self, timeout: float = 30.0) -> bool:
        return await asyncio.to_thread(self._sync.flush, timeout)

    async def feedback(self) -> AsyncGenerator[Feedback, None]:
        """Feedback messages in arrival order, from the first connection on (kept in a
        bounded queue of 1000 until read; one reader)."""
        if self._inbox is None:
            raise DeviceClientError("connect before reading feedback", code="device.not_connected")
        while True:
            yield await self._inbox.get()

    async def renew(self) -> None:
        self._sync.renew()

    async def reprovision(self) -> None:
        self._sync.reprovision()

    async def close(self) -> None:
        await asyncio.to_thread(self._sync.close)

    async def __aenter__(self) -> AsyncDeviceClient:
        await self.connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def _arrived(self, feedback: Feedback) -> None:
        """On paho's thread: hand the message to the loop."""
        if self._user_callback is not None:
            self._user_callback(feedback)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._deliver, feedback)

    def _deliver(self, feedback: Feedback) -> None:
        if self._inbox is not None:
            if self._inbox.full():
                self._inbox.get_nowait()  # the oldest unread goes: a bounded queue
            self._inbox.put_nowait(feedback)

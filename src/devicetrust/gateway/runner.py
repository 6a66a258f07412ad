"""`GatewayThread`: a `Gateway` on its own event loop in a background thread, with
thread-safe calls, for a host that is not itself an asyncio program (the CLI, tests).

    with GatewayThread(gateway) as running:      # started; stopped on exit
        running.kick(physical_id)                 # from any thread
        running.publish_feedback(physical_id, b"...")

The loop is uvloop's when uvloop is installed (an optional speed-up), else asyncio's.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

from devicetrust.domain.ids import PhysicalId

from .codec import ReasonCode
from .server import FeedbackState, Gateway

T = TypeVar("T")
CALL_TIMEOUT = 30.0


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop if the optional `uvloop` package is installed, else asyncio's."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class GatewayThread:
    def __init__(self, gateway: Gateway, *,
                 loop_factory: Callable[[], asyncio.AbstractEventLoop] = new_event_loop) -> None:
        self.gateway = gateway
        self._loop = loop_factory()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="devicetrust-gateway", daemon=True)

    @property
    def port(self) -> int:
        return self.gateway.port

    def start(self) -> GatewayThread:
        self._thread.start()
        try:
            self._run(self.gateway.start())
        except BaseException:
            self._halt()
            raise
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self._run(self.gateway.stop())
        finally:
            self._halt()

    def _halt(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CALL_TIMEOUT)
        self._loop.close()

    def __enter__(self) -> GatewayThread:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(CALL_TIMEOUT)

    def call(self, function: Callable[[], T]) -> T:
        """Run `function` on the gateway's loop and return its result."""
        async def on_loop() -> T:
            return function()
        return self._run(on_loop())

    def kick(self, physical_id: PhysicalId,
             reason: ReasonCode = ReasonCode.NOT_AUTHORIZED) -> bool:
        return self.call(lambda: self.gateway.kick(physical_id, reason))

    def publish_feedback(self, physical_id: PhysicalId, payload: bytes, *,
                         feedback_id: str | None = None) -> FeedbackState:
        return self.call(lambda: self.gateway.publish_feedback(
            physical_id, payload, feedback_id=feedback_id))

    def is_connected(self, physical_id: PhysicalId) -> bool:
        return self.call(lambda: self.gateway.is_connected(physical_id))

    def counters(self) -> dict[str, int]:
        return self.call(self.gateway.counters.snapshot)

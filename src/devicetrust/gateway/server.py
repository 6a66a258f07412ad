"""`Gateway`: the embedded asyncio MQTT device endpoint (TLS 1.3, MQTT 5 and 3.1.1).

    gateway = Gateway(GatewayConfig(port=8883, token_audience="mqtt.example.com"),
                      tls=server_tls_context(cert, key, ca_bundle), authenticator=auth,
                      sink=sink, clock=SystemClock())
    await gateway.start()
    gateway.kick(physical_id, ReasonCode.NOT_AUTHORIZED)     # revocation: closes at once
    gateway.publish_feedback(physical_id, b'{"speed": 0.8}')   # to a subscribed device
    await gateway.stop()

Every method but `start`/`stop` is synchronous and must be called on the gateway's event
loop (`GatewayThread` offers thread-safe versions). The gateway owns no database: identities
come from the device-auth service, messages go to the sink.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
import ssl
from collections.abc import Sequence

from devicetrust.domain.clock import Clock
from devicetrust.domain.ids import LogicalName, PhysicalId

from .acl import TopicLayout
from .codec import ReasonCode
from .config import GatewayConfig
from .connection import Connection
from .credentials import DeviceAuthenticator
from .environment import Environment, GatewayHooks, NoHooks
from .message_quota import MessageQuota
from .metrics import GatewayCounters
from .sessions import Feedback, RestoredSession, SessionListener, SessionRegistry
from .sink import MessageSink
from .store_queue import StoreQueue

_log = logging.getLogger(__name__)
KICK_REASONS = frozenset({ReasonCode.NOT_AUTHORIZED, ReasonCode.ADMINISTRATIVE_ACTION})
SHUTDOWN_GRACE = 5.0


class FeedbackState(enum.StrEnum):
    SENT = "sent"  # written to the live connection (QoS 1: awaiting its PUBACK)
    QUEUED = "queued"  # kept in the device's session until it subscribes or has room
    NO_SESSION = "no_session"  # not connected and no persistent session: not delivered
    QUOTA_EXCEEDED = "quota_exceeded"  # the session's feedback queue is full


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        tls: ssl.SSLContext,
        authenticator: DeviceAuthenticator,
        sink: MessageSink,
        clock: Clock,
        hooks: GatewayHooks | None = None,
        counters: GatewayCounters | None = None,
        session_listener: SessionListener | None = None,
        restored: Sequence[RestoredSession] = (),
    ) -> None:
        """`session_listener` hears of every change of a persistent session (to keep them
        across a restart); `restored` are the sessions to bring back at `start`."""
        if tls.minimum_version < ssl.TLSVersion.TLSv1_3:
            raise ValueError("the device gateway serves TLS 1.3 only (server_tls_context)")
        self.config = config
        self.counters = counters if counters is not None else GatewayCounters()
        self._tls = tls
        self._authenticator = authenticator
        self._sink = sink
        self._clock = clock
        self._hooks: GatewayHooks = hooks if hooks is not None else NoHooks()
        self._layout = TopicLayout(config.topic_prefix)
        self._sessions = SessionRegistry(session_listener)
        self._restored = tuple(restored)
        self._connections: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._env: Environment | None = None
        self._flusher: asyncio.Task[None] | None = None
        self.port = config.port

    @property
    def layout(self) -> TopicLayout:
        return self._layout

    @property
    def live_sessions(self) -> int:
        return len(self._sessions)

    def is_connected(self, physical_id: PhysicalId) -> bool:
        return self._sessions.live(physical_id) is not None

    async def start(self) -> None:
        """Bind and accept devices; `port` holds the bound port afterwards."""
        if self._server is not None:
            raise RuntimeError("the gateway is already started")
        config = self.config
        store = StoreQueue(self._sink, max_batch=config.store_batch,
                           max_pending=config.max_pending_store,
                           max_concurrent=config.store_concurrency, counters=self.counters)
        self._env = Environment(
            config=config, layout=self._layout, auth=self._authenticator,
            auth_limit=asyncio.Semaphore(config.auth_concurrency), store=store,
            sessions=self._sessions, counters=self.counters, clock=self._clock,
            hooks=self._hooks, open_connections=lambda: len(self._connections),
            quota=(MessageQuota(rate=config.message_rate, burst=config.message_burst,
                                max_units=config.max_connections)
                   if config.message_rate is not None else None))
        for session in self._restored:
            self._sessions.restore(session)
        self._flusher = asyncio.create_task(store.run(), name="gateway-store")
        self._server = await asyncio.start_server(
            self._accept, config.host, config.port, ssl=self._tls,
            ssl_handshake_timeout=config.connect_timeout, ssl_shutdown_timeout=5.0,
            limit=config.max_packet_size, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        _log.info("device gateway listening on %s:%d (TLS 1.3)", config.host, self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._env is not None
        task = asyncio.current_task()
        assert task is not None
        self.counters.connections_opened += 1
        self._connections.add(task)
        try:
            await Connection(self._env, reader, writer).run()
        except asyncio.CancelledError:
            # Cancelled by `stop`: this is the connection's outermost frame, so ending
            # normally is safe, and Python 3.11's stream callback would otherwise log the
            # cancellation as an error (it calls `task.exception()` on a cancelled task).
            pass
        finally:
            self._connections.discard(task)

    async def stop(self) -> None:
        """Stop accepting, close every session (0x8B), store what was accepted."""
        if self._server is None:
            return
        self._server.close()
        self._sessions.close_all(ReasonCode.SERVER_SHUTTING_DOWN)
        for task in self._connections:
            task.cancel()  # those still connecting; the others are closing already
        if self._connections:
            await asyncio.wait(set(self._connections), timeout=SHUTDOWN_GRACE)
        await self._server.wait_closed()
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        self._server = None

    # ---- operations for the platform (call on the gateway's loop) -----------------------

    def kick(self, physical_id: PhysicalId,
             reason: ReasonCode = ReasonCode.NOT_AUTHORIZED) -> bool:
        """Close the device's live session at once (DISCONNECT `reason` for MQTT 5) and
        forget its persistent session; False if it was not connected. Whether it may
        reconnect is the device-auth service's decision (a revoked credential may not)."""
        if reason not in KICK_REASONS:
            raise ValueError(f"a kick says 0x87 or 0x98, not {reason!r}")
        kicked = self._sessions.kick(physical_id, reason)
        self.counters.kicks += kicked
        return kicked

    def publish_feedback(self, physical_id: PhysicalId, payload: bytes, *,
                         feedback_id: str | None = None) -> FeedbackState:
        """Send feedback to `{prefix}/{physical_id}/feedback` at the QoS the device
        subscribed with, or keep it in its session until it can be sent."""
        session = self._sessions.session(physical_id)
        if session is None:
            return FeedbackState.NO_SESSION
        if len(session.queued) >= self.config.max_queued_feedback:
            self.counters.refuse(ReasonCode.QUOTA_EXCEEDED)
            return FeedbackState.QUOTA_EXCEEDED
        item = Feedback(feedback_id or secrets.token_hex(16), bytes(payload))
        session.queued.append(item)
        live = self._sessions.live(physical_id)
        if live is not None:
            live.pump_feedback()
        return FeedbackState.QUEUED if item in session.queued else FeedbackState.SENT

    def update_identity(self, physical_id: PhysicalId, logical_name: LogicalName | None) -> None:
        """The unit's logical identity changed while connected (rename): stamp its next
        diagnostics with the new name. A replaced unit is kicked instead."""
        live = self._sessions.live(physical_id)
        if isinstance(live, Connection):
            live.set_logical_name(logical_name)

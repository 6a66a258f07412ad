"""The gateway's settings (`GatewayConfig`) and its TLS context (`server_tls_context`).

The gateway never reads the environment or a file on its own: the composition root builds a
`GatewayConfig` from its settings and a TLS context from the server certificate it issued.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from .acl import DEFAULT_PREFIX

DEFAULT_PORT = 8883  # IANA "secure-mqtt"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT  # 0: a free port (tests), read back from `Gateway.port`
    topic_prefix: str = DEFAULT_PREFIX
    # The HMAC token resource / JWT audience devices must name; None: tokens are refused
    # (fail closed), only client certificates open the endpoint.
    token_audience: str | None = None
    max_packet_size: int = 256 * 1024  # whole packet; advertised in CONNACK (MQTT 5)
    receive_maximum: int = 64  # QoS 1 PUBLISHes a device may have unacknowledged
    max_keep_alive: int = 300  # seconds; a larger or zero keep alive is lowered to this
    connect_timeout: float = 10.0  # TLS handshake, then CONNECT, each within this
    max_connections: int = 20_000  # beyond this a CONNECT gets 0x97 Quota exceeded
    max_session_expiry: int = 3600  # seconds a persistent session outlives its connection
    max_queued_feedback: int = 100  # per device, beyond this feedback is refused
    max_inflight_feedback: int = 16  # QoS 1 feedback sent and not yet acknowledged
    store_batch: int = 1000  # messages per `MessageSink.store` call at most
    # Batches in the sink at once: the next is written while the previous one's commit
    # waits for the disk (their acknowledgements still leave in order, `store_queue`).
    store_concurrency: int = 2
    max_pending_store: int = 50_000  # messages waiting for the sink before reading pauses
    auth_concurrency: int = 16  # authentications running in worker threads at once
    # Per-unit message-rate quota (token bucket): `message_rate` PUBLISHes per second on
    # average, `message_burst` at once; beyond it 0x96 Message rate too high. None: no quota
    # (benchmarks only).
    message_rate: float | None = 1000.0
    message_burst: int = 2000

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError("port is 0..65535")
        if not 64 <= self.max_packet_size <= 268_435_455:
            raise ValueError("max_packet_size is 64 bytes .. 256 MB")
        if not 1 <= self.receive_maximum <= 65535:
            raise ValueError("receive_maximum is 1..65535")
        if not 1 <= self.max_keep_alive <= 65535:
            raise ValueError("max_keep_alive is 1..65535 seconds")
        if self.connect_timeout <= 0:
            raise ValueError("connect_timeout must be positive")
        for name in ("max_connections", "max_queued_feedback", "max_inflight_feedback",
                     "store_batch", "store_concurrency", "max_pending_store", "auth_concurrency",
                     "message_burst"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.message_rate is not None and not self.message_rate > 0:
            raise ValueError("message_rate must be positive (None: no quota)")
        if self.max_session_expiry < 0:
            raise ValueError("max_session_expiry must not be negative")
        if self.token_audience is not None and not self.token_audience:
            raise ValueError("token_audience must be None or a non-empty string")


def server_tls_context(
    certfile: str | Path,
    keyfile: str | Path,
    client_cafile: str | Path,
    *,
    key_password: bytes | None = None,
) -> ssl.SSLContext:
    """TLS 1.3 only, server certificate chain from `certfile` (leaf first), and a client
    certificate requested but optional: a device proves itself with one (mTLS) or with a
    token in CONNECT. `client_cafile` holds the CA certificates client chains are checked
    against in the handshake (the root and issuing CAs); revocation and the unit's standing
    are then checked by device authentication, which alone decides the identity."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(certfile, keyfile, password=key_password)
    context.load_verify_locations(cafile=str(client_cafile))
    context.verify_mode = ssl.CERT_OPTIONAL
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_TICKET  # no session resumption:
    # every connection presents its certificate again, so a revoked one cannot ride a ticket.
    return context

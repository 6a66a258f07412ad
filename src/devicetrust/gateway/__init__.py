"""devicetrust.gateway: the embedded MQTT device endpoint (MQTT 5 / 3.1.1 over TLS 1.3).

    config = GatewayConfig(port=8883, token_audience="mqtt.example.com")
    gateway = Gateway(config, tls=server_tls_context(cert, key, ca_bundle),
                      authenticator=device_auth, sink=sink, clock=SystemClock())
    with GatewayThread(gateway) as running:          # or: await gateway.start() in a loop
        running.kick(physical_id)                     # live revocation
        running.publish_feedback(physical_id, b"...")

A device may publish only to `devices/{physical-id}/diagnostics|telemetry` and subscribe
only to `devices/{physical-id}/feedback`; its identity is its credential's (client
certificate, or an HMAC token / JWT in the CONNECT password), never its client id. The packet
codec is `devicetrust.gateway.codec`. See docs/gateway.md.
"""

from .acl import TopicLayout
from .config import DEFAULT_PORT, GatewayConfig, server_tls_context
from .credentials import DeviceAuthenticator
from .environment import GatewayHooks, NoHooks
from .ingest_sink import IngestSink
from .metrics import GatewayCounters
from .runner import GatewayThread, new_event_loop
from .server import KICK_REASONS, FeedbackState, Gateway
from .sink import ACCEPTED, DeviceMessage, MessageKind, MessageSink, SinkResult

__all__ = [
    "ACCEPTED",
    "DEFAULT_PORT",
    "KICK_REASONS",
    "DeviceAuthenticator",
    "DeviceMessage",
    "FeedbackState",
    "Gateway",
    "GatewayConfig",
    "GatewayCounters",
    "GatewayHooks",
    "GatewayThread",
    "IngestSink",
    "MessageKind",
    "MessageSink",
    "NoHooks",
    "SinkResult",
    "TopicLayout",
    "new_event_loop",
    "server_tls_context",
]

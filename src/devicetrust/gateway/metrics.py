"""Plain counters of the gateway, for the composition root to export (e.g. Prometheus).

Counters only ever grow; `live_sessions` is read from the session registry by the gateway.
Names follow the Prometheus convention the API's exporter uses (`_total` for counters).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class GatewayCounters:
    connections_opened: int = 0  # TLS handshakes completed
    connections_authenticated: int = 0  # CONNACK Success sent
    connections_closed: int = 0
    refusals: Counter[str] = field(default_factory=Counter)  # by reason code, e.g. "0x87"
    messages_in: Counter[str] = field(default_factory=Counter)  # by kind, once stored
    messages_stored: int = 0  # by the sink (wills included)
    # refused by the store (malformed payload, schema, ...), by its reason code; acknowledged
    messages_refused: Counter[str] = field(default_factory=Counter)
    messages_dropped: int = 0  # QoS 0 messages the sink failed to store
    store_batches: int = 0  # `MessageSink.store` calls (group commits)
    store_failures: int = 0  # failed `MessageSink.store` calls
    feedback_sent: int = 0
    feedback_acked: int = 0
    takeovers: int = 0
    kicks: int = 0
    credential_expiries: int = 0
    keep_alive_timeouts: int = 0
    connect_timeouts: int = 0

    def refuse(self, reason_code: int) -> None:
        self.refusals[f"0x{reason_code:02x}"] += 1

    def snapshot(self) -> dict[str, int]:
        """Every counter by its exported name; labelled ones as `name{label="value"}`."""
        out = {
            f"devicetrust_gateway_{name}_total": int(getattr(self, name))
            for name in ("connections_opened", "connections_authenticated",
                         "connections_closed", "messages_stored", "messages_dropped",
                         "store_batches", "store_failures",
                         "feedback_sent", "feedback_acked", "takeovers", "kicks",
                         "credential_expiries", "keep_alive_timeouts", "connect_timeouts")
        }
        for code, n in sorted(self.refusals.items()):
            out[f'devicetrust_gateway_refusals_total{{reason_code="{code}"}}'] = n
        for reason, n in sorted(self.messages_refused.items()):
            out[f'devicetrust_gateway_messages_refused_total{{reason="{reason}"}}'] = n
        for kind, n in sorted(self.messages_in.items()):
            out[f'devicetrust_gateway_messages_in_total{{kind="{kind}"}}'] = n
        return out

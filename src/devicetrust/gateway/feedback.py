"""Feedback to one connected device: its subscription, the send window, resends.

The backend's messages go to `{prefix}/{physical-id}/feedback` only, at the QoS the device
subscribed with (0 or 1). At QoS 1 at most `send_window` are unacknowledged at once (the
gateway's cap and the client's Receive Maximum); the rest wait in the session's queue. On a
resumed session the unacknowledged ones are resent first, with DUP (MQTT 5.0 section 4.4).
A message larger than the client's Maximum Packet Size is dropped, as the spec requires.
"""

from __future__ import annotations

from collections.abc import Callable

from devicetrust.domain.ids import PhysicalId

from .codec import ProtocolVersion, Publish, QoS, encode
from .environment import GatewayHooks
from .metrics import GatewayCounters
from .sessions import DeviceSession, Feedback


class FeedbackChannel:
    def __init__(self, session: DeviceSession, physical_id: PhysicalId, topic: str,
                 version: ProtocolVersion, *, send_window: int, client_max_packet: int | None,
                 counters: GatewayCounters, hooks: GatewayHooks,
                 send: Callable[[bytes], None]) -> None:
        self.session = session
        self._physical_id = physical_id
        self._topic = topic
        self._version = version
        self._window = send_window
        self._max_packet = client_max_packet
        self._counters = counters
        self._hooks = hooks
        self._send = send

    def subscribe(self, qos: QoS) -> QoS:
        self.session.subscription = QoS(min(qos, QoS.AT_LEAST_ONCE))
        return self.session.subscription

    def unsubscribe(self) -> bool:
        existed = self.session.subscription is not None
        self.session.subscription = None
        return existed

    def resume(self) -> None:
        for packet_id, item in list(self.session.inflight.items()):
            self._publish(item, packet_id, dup=True)
        self.pump()

    def pump(self) -> None:
        session = self.session
        if session.subscription is None:
            return
        while session.queued and len(session.inflight) < self._window:
            self._publish(session.queued.popleft(), None, dup=False)

    def acked(self, packet_id: int) -> None:
        item = self.session.inflight.pop(packet_id, None)
        if item is not None:
            self._counters.feedback_acked += 1
            self._hooks.feedback_acked(self._physical_id, item.feedback_id)
            self.pump()

    def _publish(self, item: Feedback, packet_id: int | None, *, dup: bool) -> None:
        session = self.session
        qos = session.subscription
        if qos is None:
            return
        if qos is QoS.AT_LEAST_ONCE and packet_id is None:
            packet_id = session.allocate_packet_id()
        at_least_once = qos is QoS.AT_LEAST_ONCE
        data = encode(Publish(self._topic, item.payload, qos, dup=dup and at_least_once,
                              packet_id=packet_id if at_least_once else None), self._version)
        if self._max_packet is not None and len(data) > self._max_packet:
            if packet_id is not None:
                session.inflight.pop(packet_id, None)
            return
        if at_least_once and packet_id is not None:
            session.inflight[packet_id] = item
        self._send(data)
        self._counters.feedback_sent += 1

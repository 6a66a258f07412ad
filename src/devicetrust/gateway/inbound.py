"""What one connected device publishes: admitted, stored by group commit, acknowledged.

For each PUBLISH, in this order: `rules.admit_publish` (QoS, retain, properties, the topic
against the device's own, worked out once per connection and again on a rename), the
unit's message-rate quota, then the store queue. QoS 1 PUBLISHes are acknowledged only
once the batch holding them is stored, all of this connection's PUBACKs of one batch in one
write, in the order of the PUBLISHes; more than Receive Maximum unacknowledged pauses
reading (`room`). A failed batch is acknowledged never: the connection closes with 0x89
and the device resends.

This is the connection's `StoreClient`: the store queue tells it once per batch, not once
per message. Never acknowledges a message the sink did not store (or refuse for good), and
never files a message under a topic or identity the credential did not prove.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence
from typing import Protocol

from devicetrust.deviceauth import AuthenticatedDevice

from . import rules
from .codec import ProtocolVersion, Publish, QoS, ReasonCode, Will, encode_puback
from .environment import Environment
from .publish_outcome import count_outcomes, device_message_id, puback_reason
from .sink import DeviceMessage, SinkResult

V5 = ProtocolVersion.V5
_ACKED = QoS.AT_LEAST_ONCE
_SUCCESS = ReasonCode.SUCCESS


class Closable(Protocol):
    @property
    def closing(self) -> bool: ...

    def disconnect(self, reason: ReasonCode, *, store_will: bool) -> None: ...


class Inbound:
    def __init__(
        self,
        env: Environment,
        device: AuthenticatedDevice,
        version: ProtocolVersion,
        *,
        connection: Closable,
        send: Callable[[bytes], None],
    ) -> None:
        self._env = env
        self._version = version
        self._connection = connection
        self._send = send
        self._receive_maximum = env.config.receive_maximum
        self._inflight = 0  # QoS 1 PUBLISHes stored-pending, not yet acknowledged
        self._over_rate = 0  # PUBLISHes refused in a row by the message-rate quota
        self.room = asyncio.Event()  # set while under Receive Maximum
        self.room.set()
        self.received_at = env.clock.now()  # when the bytes being decoded arrived
        self.device = device
        self._topics = rules.publish_topics(env.layout, device)

    def set_device(self, device: AuthenticatedDevice) -> None:
        """The same unit, its logical identity changed: its next messages are filed so."""
        self.device = device
        self._topics = rules.publish_topics(self._env.layout, device)

    def publish(self, p: Publish) -> bool:
        """Admit and store one PUBLISH; False once the connection is to close."""
        env, device = self._env, self.device
        kind = rules.admit_publish(p, self._version, self._topics)
        if isinstance(kind, rules.Refusal):
            if kind.reason is ReasonCode.NOT_AUTHORIZED:
                env.hooks.refused(device.physical_id, kind.reason, f"publish to {p.topic[:128]!r}")
            env.counters.refuse(kind.reason)
            if kind.close:
                self._connection.disconnect(kind.reason, store_will=True)
                return False
            if p.qos is _ACKED:
                self._puback(p, kind.reason)
            return True  # a refused QoS 0 message is dropped (counted)
        quota = env.quota
        if quota is not None and not quota.take(
            device.physical_id, asyncio.get_running_loop().time()
        ):
            return self._over_quota(p, quota.rate, quota.burst)
        self._over_rate = 0
        props = p.properties
        message = DeviceMessage(
            device_message_id(p) if props.user_properties else None,
            kind,
            device.physical_id,
            device.logical_name,
            p.payload,
            self.received_at,
            props.content_type,
        )
        if p.qos is _ACKED:
            env.store.put(message, self, p.packet_id)
            self._inflight += 1
            if self._inflight >= self._receive_maximum:
                self.room.clear()
        else:
            env.store.put(message, self, None)
        return True

    def _puback(self, p: Publish, reason: ReasonCode) -> None:
        assert p.packet_id is not None
        self._send(encode_puback(p.packet_id, reason, self._version))

    def _over_quota(self, p: Publish, rate: float, burst: int) -> bool:
        """The unit publishes faster than its quota: counted and audited as 0x96 Message
        rate too high (the auditor coalesces per window). MQTT 5: PUBACK 0x97 Quota exceeded
        at QoS 1 (a PUBACK cannot carry 0x96, MQTT 5.0 section 3.4.2.1), dropped at QoS 0,
        and DISCONNECT 0x96 once the device ignores it for `burst` messages in a row;
        3.1.1, which has no negative PUBACK: disconnected at once."""
        reason = ReasonCode.MESSAGE_RATE_TOO_HIGH
        self._env.counters.refuse(reason)
        self._env.hooks.refused(self.device.physical_id, reason, f"publish rate over {rate:g}/s")
        self._over_rate += 1
        if self._version is not V5 or self._over_rate >= burst:
            self._connection.disconnect(reason, store_will=True)
            return False
        if p.qos is _ACKED:
            self._puback(p, ReasonCode.QUOTA_EXCEEDED)
        return True

    def store_will(self, will: Will) -> None:
        """Store the will like a PUBLISH to its topic (checked again: the unit may have lost
        its logical identity since CONNECT); counted, never acknowledged."""
        device = self.device
        kind = rules.will_kind(self._env.layout, device, will.topic)
        if kind is None:
            return
        message = DeviceMessage(
            secrets.token_hex(16),
            kind,
            device.physical_id,
            device.logical_name,
            will.payload,
            self._env.clock.now(),
            will.properties.content_type,
            will=True,
        )
        self._env.store.put(message, self, None)

    def stored(
        self,
        tags: list[int | None],
        messages: list[DeviceMessage],
        results: Sequence[SinkResult] | BaseException,
    ) -> None:
        """This connection's messages of one stored batch (`StoreClient`); `tags` are the
        packet ids of QoS 1 PUBLISHes, None for QoS 0 and the will."""
        env = self._env
        acked = len(tags) - tags.count(None)
        if acked:
            self._inflight -= acked
            if self._inflight < self._receive_maximum:
                self.room.set()
        if isinstance(results, BaseException):
            env.counters.messages_dropped += sum(
                1 for tag, m in zip(tags, messages, strict=True) if tag is None and not m.will
            )
            # Not acknowledged: the device resends it. Server busy tells an MQTT 5 client why.
            self._connection.disconnect(ReasonCode.SERVER_BUSY, store_will=False)
            return
        # Stored, or refused for good: acknowledged either way.
        count_outcomes(env.counters, messages, results)
        if not acked or self._connection.closing:
            return
        version = self._version
        self._send(
            b"".join(
                [
                    encode_puback(
                        tag,
                        _SUCCESS if result.refused is None else puback_reason(result, version),
                        version,
                    )
                    for tag, result in zip(tags, results, strict=True)
                    if tag is not None
                ]
            )
        )

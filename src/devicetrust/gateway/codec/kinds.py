"""The small enumerations of the MQTT wire format: protocol versions, packet types, QoS."""

from __future__ import annotations

import enum


class ProtocolVersion(enum.IntEnum):
    """The CONNECT protocol level (3.1.1 section 3.1.2.2, 5.0 section 3.1.2.2)."""

    V311 = 4
    V5 = 5


class PacketType(enum.IntEnum):
    """The control packet type: the high nibble of the first byte (spec 2.1.2)."""

    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15  # MQTT 5 only; reserved (forbidden) in 3.1.1


class QoS(enum.IntEnum):
    AT_MOST_ONCE = 0
    AT_LEAST_ONCE = 1
    EXACTLY_ONCE = 2


class RetainHandling(enum.IntEnum):
    """Subscription option bits 4-5 (MQTT 5.0 section 3.8.3.1)."""

    SEND_ON_SUBSCRIBE = 0
    SEND_IF_NEW_SUBSCRIPTION = 1
    DO_NOT_SEND = 2

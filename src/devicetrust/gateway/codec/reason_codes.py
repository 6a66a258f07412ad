"""MQTT 5 reason codes (spec 2.4), the subset each packet may carry, and the 3.1.1 mapping.

One enum serves both protocol versions: a 3.1.1 CONNACK return code or SUBACK return code is
decoded into the MQTT 5 reason code of the same meaning, and encoded back through
`v311_connack_code` / `v311_suback_code` (lossy for MQTT 5-only refusals, which 3.1.1 cannot
express; the closest 3.1.1 code is sent).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class ReasonCode(enum.IntEnum):
    """Every reason code of MQTT 5.0 (0x00..0xA2). 0x00 has three names, as in the spec."""

    SUCCESS = 0x00
    NORMAL_DISCONNECTION = 0x00
    GRANTED_QOS_0 = 0x00
    GRANTED_QOS_1 = 0x01
    GRANTED_QOS_2 = 0x02
    DISCONNECT_WITH_WILL_MESSAGE = 0x04
    NO_MATCHING_SUBSCRIBERS = 0x10
    NO_SUBSCRIPTION_EXISTED = 0x11
    CONTINUE_AUTHENTICATION = 0x18
    RE_AUTHENTICATE = 0x19
    UNSPECIFIED_ERROR = 0x80
    MALFORMED_PACKET = 0x81
    PROTOCOL_ERROR = 0x82
    IMPLEMENTATION_SPECIFIC_ERROR = 0x83
    UNSUPPORTED_PROTOCOL_VERSION = 0x84
    CLIENT_IDENTIFIER_NOT_VALID = 0x85
    BAD_USER_NAME_OR_PASSWORD = 0x86
    NOT_AUTHORIZED = 0x87
    SERVER_UNAVAILABLE = 0x88
    SERVER_BUSY = 0x89
    BANNED = 0x8A
    SERVER_SHUTTING_DOWN = 0x8B
    BAD_AUTHENTICATION_METHOD = 0x8C
    KEEP_ALIVE_TIMEOUT = 0x8D
    SESSION_TAKEN_OVER = 0x8E
    TOPIC_FILTER_INVALID = 0x8F
    TOPIC_NAME_INVALID = 0x90
    PACKET_IDENTIFIER_IN_USE = 0x91
    PACKET_IDENTIFIER_NOT_FOUND = 0x92
    RECEIVE_MAXIMUM_EXCEEDED = 0x93
    TOPIC_ALIAS_INVALID = 0x94
    PACKET_TOO_LARGE = 0x95
    MESSAGE_RATE_TOO_HIGH = 0x96
    QUOTA_EXCEEDED = 0x97
    ADMINISTRATIVE_ACTION = 0x98
    PAYLOAD_FORMAT_INVALID = 0x99
    RETAIN_NOT_SUPPORTED = 0x9A
    QOS_NOT_SUPPORTED = 0x9B
    USE_ANOTHER_SERVER = 0x9C
    SERVER_MOVED = 0x9D
    SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E
    CONNECTION_RATE_EXCEEDED = 0x9F
    MAXIMUM_CONNECT_TIME = 0xA0
    SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1
    WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2

    @property
    def is_error(self) -> bool:
        """Values of 0x80 and above indicate failure (spec 2.4)."""
        return self >= 0x80


def _codes(*values: int) -> frozenset[ReasonCode]:
    return frozenset(ReasonCode(v) for v in values)


# The reason codes each packet may carry (MQTT 5.0 sections 3.2.2.2, 3.4.2.1, 3.5.2.1,
# 3.6.2.1, 3.7.2.1, 3.9.3, 3.11.3, 3.14.2.1, 3.15.2.1). Anything else is a Malformed Packet.
CONNACK_CODES = _codes(
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95,
    0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
)
PUBACK_CODES = _codes(0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99)
PUBREC_CODES = PUBACK_CODES
PUBREL_CODES = _codes(0x00, 0x92)
PUBCOMP_CODES = PUBREL_CODES
SUBACK_CODES = _codes(0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2)
UNSUBACK_CODES = _codes(0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91)
DISCONNECT_CODES = _codes(
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94,
    0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
)
AUTH_CODES = _codes(0x00, 0x18, 0x19)

# MQTT 3.1.1 CONNACK return codes (3.1.1 section 3.2.2.3) and their MQTT 5 equivalents.
V311_CONNACK_TO_REASON: Mapping[int, ReasonCode] = {
    0x00: ReasonCode.SUCCESS,
    0x01: ReasonCode.UNSUPPORTED_PROTOCOL_VERSION,
    0x02: ReasonCode.CLIENT_IDENTIFIER_NOT_VALID,
    0x03: ReasonCode.SERVER_UNAVAILABLE,
    0x04: ReasonCode.BAD_USER_NAME_OR_PASSWORD,
    0x05: ReasonCode.NOT_AUTHORIZED,
}
_REASON_TO_V311_CONNACK = {reason: code for code, reason in V311_CONNACK_TO_REASON.items()}
# MQTT 5-only refusals, reduced to what a 3.1.1 client understands.
_REASON_TO_V311_CONNACK.update({
    ReasonCode.BANNED: 0x05,
    ReasonCode.QUOTA_EXCEEDED: 0x05,
    ReasonCode.BAD_AUTHENTICATION_METHOD: 0x04,
    ReasonCode.SERVER_BUSY: 0x03,
    ReasonCode.USE_ANOTHER_SERVER: 0x03,
    ReasonCode.SERVER_MOVED: 0x03,
    ReasonCode.CONNECTION_RATE_EXCEEDED: 0x03,
})

# MQTT 3.1.1 SUBACK return codes (3.1.1 section 3.9.3): three grants and one failure.
V311_SUBACK_CODES = _codes(0x00, 0x01, 0x02, 0x80)


def v311_connack_code(reason: ReasonCode) -> int:
    """The 3.1.1 CONNACK return code closest to an MQTT 5 reason code (3 if none is closer)."""
    return _REASON_TO_V311_CONNACK.get(reason, 0x03)


def v311_suback_code(reason: ReasonCode) -> int:
    """The 3.1.1 SUBACK return code: the granted QoS, or 0x80 for any refusal."""
    return int(reason) if reason in V311_SUBACK_CODES else 0x80

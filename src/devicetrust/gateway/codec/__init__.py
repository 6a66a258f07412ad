"""The MQTT 5.0 / 3.1.1 packet codec of the device gateway: sans-I/O, bytes in, packets out.

    decoder = Decoder(max_packet_size=256 * 1024)     # server side: version from CONNECT
    for packet in decoder.feed(chunk):                 # raises MqttError on any violation
        ...
    transport.write(encode(Connack(), decoder.version))

It never touches a socket, a clock or the rest of devicetrust (it imports only the domain's
error base). See docs/mqtt.md for what it validates and the reason codes it raises with.
"""

from __future__ import annotations

from .decoder import DEFAULT_MAX_PACKET_SIZE, Decoder, decode
from .encoder import encode, encode_puback
from .errors import (
    MalformedPacket,
    MqttError,
    PacketTooLarge,
    ProtocolError,
    UnsupportedProtocolVersion,
)
from .kinds import PacketType, ProtocolVersion, QoS, RetainHandling
from .packets import (
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
)
from .properties import NO_PROPERTIES, Properties, PropertyId
from .reason_codes import ReasonCode, v311_connack_code, v311_suback_code
from .topics import (
    SharedSubscription,
    is_valid_topic_filter,
    is_valid_topic_name,
    matches,
    parse_shared,
)

__all__ = [
    "DEFAULT_MAX_PACKET_SIZE",
    "NO_PROPERTIES",
    "Auth",
    "Connack",
    "Connect",
    "Decoder",
    "Disconnect",
    "MalformedPacket",
    "MqttError",
    "Packet",
    "PacketTooLarge",
    "PacketType",
    "Pingreq",
    "Pingresp",
    "Properties",
    "PropertyId",
    "ProtocolError",
    "ProtocolVersion",
    "Puback",
    "Pubcomp",
    "Publish",
    "Pubrec",
    "Pubrel",
    "QoS",
    "ReasonCode",
    "RetainHandling",
    "SharedSubscription",
    "Suback",
    "Subscribe",
    "Subscription",
    "Unsuback",
    "Unsubscribe",
    "UnsupportedProtocolVersion",
    "Will",
    "decode",
    "encode",
    "encode_puback",
    "is_valid_topic_filter",
    "is_valid_topic_name",
    "matches",
    "parse_shared",
    "v311_connack_code",
    "v311_suback_code",
]

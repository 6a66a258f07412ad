"""Packet bodies to packet values: one function per packet type, strict per the spec.

Each function gets the first byte (type and flags, already checked by the framer), the body
(exactly the remaining length) and the protocol version, and returns the packet or raises a
`MqttError`. The body must be consumed exactly: anything left over is a Malformed Packet.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from ._wire import Reader
from .errors import MalformedPacket, ProtocolError, UnsupportedProtocolVersion
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
from .properties import NO_PROPERTIES, WILL, Properties, decode_properties
from .reason_codes import (
    AUTH_CODES,
    CONNACK_CODES,
    DISCONNECT_CODES,
    PUBACK_CODES,
    PUBCOMP_CODES,
    PUBREC_CODES,
    PUBREL_CODES,
    SUBACK_CODES,
    UNSUBACK_CODES,
    V311_CONNACK_TO_REASON,
    V311_SUBACK_CODES,
    ReasonCode,
)
from .topics import is_valid_topic_filter, parse_shared

V5 = ProtocolVersion.V5
Decode = Callable[[int, bytes, ProtocolVersion], Packet]


def _reason(value: int, allowed: Collection[ReasonCode], packet: str) -> ReasonCode:
    if value not in allowed:
        raise MalformedPacket(f"reason code 0x{value:02X} is not valid in {packet}")
    return ReasonCode(value)


def _packet_id(reader: Reader) -> int:
    packet_id = reader.u16("packet identifier")
    if packet_id == 0:
        raise MalformedPacket("packet identifier 0 (must be non-zero)")
    return packet_id


_QOS = tuple(QoS)


def _qos(value: int, what: str) -> QoS:
    if value == 3:
        raise MalformedPacket(f"{what} QoS 3")
    return _QOS[value]


def _topic_name(reader: Reader, what: str) -> str:
    topic = reader.utf8(what)
    if "+" in topic or "#" in topic:
        raise MalformedPacket(f"{what} contains a wildcard")
    return topic


def _topic_filter(reader: Reader) -> str:
    topic_filter = reader.utf8("topic filter")
    if not is_valid_topic_filter(topic_filter):
        raise MalformedPacket(f"malformed topic filter {topic_filter!r}")
    return topic_filter


def decode_connect(_first: int, body: bytes, _version: ProtocolVersion) -> Connect:
    r = Reader(body)
    name = r.utf8("protocol name")
    level = r.u8("protocol level")
    if name != "MQTT" or level not in (4, 5):
        raise UnsupportedProtocolVersion(f"protocol {name!r} level {level} is not supported",
                                         protocol_name=name, protocol_level=level)
    version = ProtocolVersion(level)
    flags = r.u8("connect flags")
    if flags & 0x01:
        raise MalformedPacket("CONNECT reserved flag is set")
    has_will, will_qos, will_retain = bool(flags & 0x04), (flags >> 3) & 0x03, bool(flags & 0x20)
    has_password, has_username = bool(flags & 0x40), bool(flags & 0x80)
    if not has_will and (will_qos or will_retain):
        raise MalformedPacket("will QoS or retain set without a will")
    will_qos_value = _qos(will_qos, "will")
    if version is not V5 and has_password and not has_username:
        raise MalformedPacket("password without user name (3.1.1 [MQTT-3.1.2-22])")
    keep_alive = r.u16("keep alive")
    props = decode_properties(r, PacketType.CONNECT) if version is V5 else NO_PROPERTIES
    if props.authentication_data is not None and props.authentication_method is None:
        raise ProtocolError("authentication data without an authentication method")
    client_id = r.utf8("client identifier")
    will = None
    if has_will:
        will_props = decode_properties(r, WILL) if version is V5 else NO_PROPERTIES
        topic = _topic_name(r, "will topic")
        if not topic:
            raise MalformedPacket("empty will topic")
        payload = r.binary("will payload")
        will = Will(topic, payload, will_qos_value, will_retain, will_props)
    username = r.utf8("user name") if has_username else None
    password = r.binary("password") if has_password else None
    r.expect_end("CONNECT payload")
    return Connect(version, client_id, bool(flags & 0x02), keep_alive, username, password, will,
                   props)


def decode_connack(_first: int, body: bytes, version: ProtocolVersion) -> Connack:
    r = Reader(body)
    flags = r.u8("acknowledge flags")
    if flags & 0xFE:
        raise MalformedPacket("CONNACK reserved flags are set")
    code = r.u8("reason code")
    if version is V5:
        reason = _reason(code, CONNACK_CODES, "CONNACK")
        props = decode_properties(r, PacketType.CONNACK)
    else:
        if code not in V311_CONNACK_TO_REASON:
            raise MalformedPacket(f"CONNACK return code {code} is not defined in 3.1.1")
        reason, props = V311_CONNACK_TO_REASON[code], NO_PROPERTIES
    r.expect_end("CONNACK")
    if reason and flags:
        raise ProtocolError("session present with a refusal ([MQTT-3.2.2-6])")
    return Connack(bool(flags), reason, props)


def decode_publish(first: int, body: bytes, version: ProtocolVersion) -> Publish:
    qos = _qos((first >> 1) & 0x03, "PUBLISH")
    dup = bool(first & 0x08)
    if dup and qos is QoS.AT_MOST_ONCE:
        raise MalformedPacket("DUP set on a QoS 0 PUBLISH ([MQTT-3.3.1-2])")
    r = Reader(body)
    topic = _topic_name(r, "topic name")
    packet_id = _packet_id(r) if qos else None
    props = decode_properties(r, PacketType.PUBLISH) if version is V5 else NO_PROPERTIES
    if not topic:
        if version is not V5:
            raise MalformedPacket("empty topic name")
        if props.topic_alias is None:
            raise ProtocolError("empty topic name without a topic alias")
    return Publish(topic, r.rest(), qos, bool(first & 0x01), dup, packet_id, props)


_PLAIN_QOS = (QoS.AT_MOST_ONCE, QoS.AT_LEAST_ONCE)


def decode_plain_publish(first: int, buffer: bytes | bytearray, start: int, end: int,
                         version: ProtocolVersion) -> Publish | None:
    """The PUBLISH a device usually sends -- QoS 0 or 1, a topic name, no properties --
    straight from the receive buffer (body at `start:end`), without copying the body first;
    None for anything else, which `decode_publish` then decodes (or refuses) in full. Where
    both decode, the packets are equal (property-tested)."""
    if first & 0x04 or end - start < 2:
        return None  # QoS 2 or 3, or no room for the topic length: the general way
    topic_end = start + 2 + ((buffer[start] << 8) | buffer[start + 1])
    pos = topic_end
    packet_id = None
    if first & 0x02:
        if pos + 2 > end:
            return None
        packet_id = (buffer[pos] << 8) | buffer[pos + 1]
        if not packet_id:
            return None
        pos += 2
    elif first & 0x08:
        return None  # DUP on QoS 0: malformed
    if version is V5:
        if pos >= end or buffer[pos]:
            return None  # properties (or none at all): the general way
        pos += 1
    elif pos > end:
        return None
    try:
        topic = buffer[start + 2 : topic_end].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not topic or "+" in topic or "#" in topic or "\x00" in topic:
        return None
    return Publish(topic, bytes(buffer[pos:end]), _PLAIN_QOS[(first >> 1) & 0x01],
                   bool(first & 0x01), bool(first & 0x08), packet_id, NO_PROPERTIES)


def _ack_parts(body: bytes, version: ProtocolVersion, packet_type: PacketType,
               allowed: Collection[ReasonCode]) -> tuple[int, ReasonCode, Properties]:
    r = Reader(body)
    packet_id = _packet_id(r)
    reason, props = ReasonCode.SUCCESS, NO_PROPERTIES
    if version is V5 and r.remaining:
        reason = _reason(r.u8("reason code"), allowed, packet_type.name)
        if r.remaining:
            props = decode_properties(r, packet_type)
    r.expect_end(packet_type.name)
    return packet_id, reason, props


def decode_puback(_first: int, body: bytes, version: ProtocolVersion) -> Puback:
    return Puback(*_ack_parts(body, version, PacketType.PUBACK, PUBACK_CODES))


def decode_pubrec(_first: int, body: bytes, version: ProtocolVersion) -> Pubrec:
    return Pubrec(*_ack_parts(body, version, PacketType.PUBREC, PUBREC_CODES))


def decode_pubrel(_first: int, body: bytes, version: ProtocolVersion) -> Pubrel:
    return Pubrel(*_ack_parts(body, version, PacketType.PUBREL, PUBREL_CODES))


def decode_pubcomp(_first: int, body: bytes, version: ProtocolVersion) -> Pubcomp:
    return Pubcomp(*_ack_parts(body, version, PacketType.PUBCOMP, PUBCOMP_CODES))


def _subscription(r: Reader, version: ProtocolVersion) -> Subscription:
    topic_filter = _topic_filter(r)
    options = r.u8("subscription options")
    qos = _qos(options & 0x03, "subscription")
    if version is not V5:
        if options & 0xFC:
            raise MalformedPacket("SUBSCRIBE reserved option bits are set")
        return Subscription(topic_filter, qos)
    if options & 0xC0:
        raise MalformedPacket("SUBSCRIBE reserved option bits are set")
    handling = (options >> 4) & 0x03
    if handling == 3:
        raise ProtocolError("retain handling 3")
    no_local = bool(options & 0x04)
    if no_local and parse_shared(topic_filter) is not None:
        raise ProtocolError("no local on a shared subscription ([MQTT-3.8.3-4])")
    return Subscription(topic_filter, qos, no_local, bool(options & 0x08),
                        RetainHandling(handling))


def decode_subscribe(_first: int, body: bytes, version: ProtocolVersion) -> Subscribe:
    r = Reader(body)
    packet_id = _packet_id(r)
    props = decode_properties(r, PacketType.SUBSCRIBE) if version is V5 else NO_PROPERTIES
    if len(props.subscription_identifiers) > 1:
        raise ProtocolError("more than one subscription identifier in SUBSCRIBE")
    subscriptions = []
    while r.remaining:
        subscriptions.append(_subscription(r, version))
    if not subscriptions:
        raise ProtocolError("SUBSCRIBE without a topic filter")
    return Subscribe(packet_id, tuple(subscriptions), props)


def decode_suback(_first: int, body: bytes, version: ProtocolVersion) -> Suback:
    r = Reader(body)
    packet_id = _packet_id(r)
    props = decode_properties(r, PacketType.SUBACK) if version is V5 else NO_PROPERTIES
    allowed = SUBACK_CODES if version is V5 else V311_SUBACK_CODES
    codes = tuple(_reason(c, allowed, "SUBACK") for c in r.rest())
    if not codes:
        raise ProtocolError("SUBACK without a reason code")
    return Suback(packet_id, codes, props)


def decode_unsubscribe(_first: int, body: bytes, version: ProtocolVersion) -> Unsubscribe:
    r = Reader(body)
    packet_id = _packet_id(r)
    props = decode_properties(r, PacketType.UNSUBSCRIBE) if version is V5 else NO_PROPERTIES
    filters = []
    while r.remaining:
        filters.append(_topic_filter(r))
    if not filters:
        raise ProtocolError("UNSUBSCRIBE without a topic filter")
    return Unsubscribe(packet_id, tuple(filters), props)


def decode_unsuback(_first: int, body: bytes, version: ProtocolVersion) -> Unsuback:
    r = Reader(body)
    packet_id = _packet_id(r)
    if version is not V5:
        r.expect_end("UNSUBACK")
        return Unsuback(packet_id)
    props = decode_properties(r, PacketType.UNSUBACK)
    codes = tuple(_reason(c, UNSUBACK_CODES, "UNSUBACK") for c in r.rest())
    if not codes:
        raise ProtocolError("UNSUBACK without a reason code")
    return Unsuback(packet_id, codes, props)


def _empty(body: bytes, name: str) -> None:
    if body:
        raise MalformedPacket(f"{name} must have a remaining length of 0")


def decode_pingreq(_first: int, body: bytes, _version: ProtocolVersion) -> Pingreq:
    _empty(body, "PINGREQ")
    return Pingreq()


def decode_pingresp(_first: int, body: bytes, _version: ProtocolVersion) -> Pingresp:
    _empty(body, "PINGRESP")
    return Pingresp()


def decode_disconnect(_first: int, body: bytes, version: ProtocolVersion) -> Disconnect:
    if version is not V5:
        _empty(body, "a 3.1.1 DISCONNECT")
        return Disconnect()
    r = Reader(body)
    reason, props = ReasonCode.NORMAL_DISCONNECTION, NO_PROPERTIES
    if r.remaining:
        reason = _reason(r.u8("reason code"), DISCONNECT_CODES, "DISCONNECT")
        if r.remaining:  # "If the Remaining Length is less than 2, a value of 0 is used"
            props = decode_properties(r, PacketType.DISCONNECT)
    r.expect_end("DISCONNECT")
    return Disconnect(reason, props)


def decode_auth(_first: int, body: bytes, _version: ProtocolVersion) -> Auth:
    if not body:
        return Auth()
    r = Reader(body)
    reason = _reason(r.u8("reason code"), AUTH_CODES, "AUTH")
    props = decode_properties(r, PacketType.AUTH)
    r.expect_end("AUTH")
    return Auth(reason, props)


DECODERS: dict[int, Decode] = {
    PacketType.CONNECT: decode_connect,
    PacketType.CONNACK: decode_connack,
    PacketType.PUBLISH: decode_publish,
    PacketType.PUBACK: decode_puback,
    PacketType.PUBREC: decode_pubrec,
    PacketType.PUBREL: decode_pubrel,
    PacketType.PUBCOMP: decode_pubcomp,
    PacketType.SUBSCRIBE: decode_subscribe,
    PacketType.SUBACK: decode_suback,
    PacketType.UNSUBSCRIBE: decode_unsubscribe,
    PacketType.UNSUBACK: decode_unsuback,
    PacketType.PINGREQ: decode_pingreq,
    PacketType.PINGRESP: decode_pingresp,
    PacketType.DISCONNECT: decode_disconnect,
    PacketType.AUTH: decode_auth,
}

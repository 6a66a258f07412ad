"""Packet values to bytes, for either protocol version.

`encode(packet, version)` returns one complete packet. For MQTT 5 it writes the shortest
form the spec allows (a PUBACK with Success and no properties is 2 bytes of body; a normal
DISCONNECT is empty). For 3.1.1 it leaves out what 3.1.1 cannot carry (properties, subscription
options, UNSUBACK reason codes, the reason code of acks and DISCONNECT) and maps CONNACK and
SUBACK reason codes to 3.1.1 return codes (`reason_codes.v311_*`); AUTH cannot be sent.

It refuses (ValueError) a packet that the decoder would refuse, so what it writes decodes back
to the same packet: `decode(encode(p, v)) == p` for every p valid in version v.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Collection
from typing import Any

from . import _wire
from .kinds import PacketType, ProtocolVersion, QoS
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
    Unsuback,
    Unsubscribe,
)
from .properties import NO_PROPERTIES, WILL, Properties, encode_properties
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
    ReasonCode,
    v311_connack_code,
    v311_suback_code,
)
from .topics import is_valid_topic_filter, is_valid_topic_name, parse_shared

V5 = ProtocolVersion.V5
_Body = tuple[int, bytes]  # first byte, body


def _packet_id(packet_id: int | None) -> bytes:
    if packet_id is None or not 1 <= packet_id <= 0xFFFF:
        raise ValueError(f"packet identifier must be 1..65535, not {packet_id!r}")
    return _wire.u16(packet_id)


def _reason(reason: ReasonCode, allowed: Collection[ReasonCode], packet: str) -> bytes:
    if reason not in allowed:
        raise ValueError(f"reason code {reason!r} cannot be sent in {packet}")
    return bytes((reason,))


def _filter(topic_filter: str) -> bytes:
    if not is_valid_topic_filter(topic_filter):
        raise ValueError(f"invalid topic filter {topic_filter!r}")
    return _wire.utf8(topic_filter)


def _connect(p: Connect, version: ProtocolVersion) -> _Body:
    if p.protocol_version != version:
        raise ValueError("a CONNECT is encoded in its own protocol version")
    if version is not V5 and p.password is not None and p.username is None:
        raise ValueError("3.1.1 allows a password only with a user name")
    if p.properties.authentication_data is not None and p.properties.authentication_method is None:
        raise ValueError("authentication data needs an authentication method")
    flags = 0x02 if p.clean_start else 0
    parts = [b"", b""]
    if p.will is not None:
        if not is_valid_topic_name(p.will.topic):
            raise ValueError(f"invalid will topic {p.will.topic!r}")
        flags |= 0x04 | (p.will.qos << 3) | (0x20 if p.will.retain else 0)
        if version is V5:
            parts.append(encode_properties(p.will.properties, WILL))
        parts += [_wire.utf8(p.will.topic), _wire.binary(p.will.payload)]
    if p.username is not None:
        flags |= 0x80
        parts.append(_wire.utf8(p.username))
    if p.password is not None:
        flags |= 0x40
        parts.append(_wire.binary(p.password))
    props = encode_properties(p.properties, PacketType.CONNECT) if version is V5 else b""
    parts[0] = (_wire.utf8("MQTT") + bytes((version, flags)) + _wire.u16(p.keep_alive) + props)
    parts[1] = _wire.utf8(p.client_id)
    return 0x10, b"".join(parts)


def _connack(p: Connack, version: ProtocolVersion) -> _Body:
    if p.session_present and p.reason_code.is_error:
        raise ValueError("session present cannot accompany a refusal")
    flags = b"\x01" if p.session_present else b"\x00"
    if version is V5:
        body = flags + _reason(p.reason_code, CONNACK_CODES, "CONNACK")
        return 0x20, body + encode_properties(p.properties, PacketType.CONNACK)
    return 0x20, flags + bytes((v311_connack_code(p.reason_code),))


def _publish(p: Publish, version: ProtocolVersion) -> _Body:
    if "+" in p.topic or "#" in p.topic:
        raise ValueError(f"invalid topic name {p.topic!r}")
    if not p.topic and (version is not V5 or p.properties.topic_alias is None):
        raise ValueError("an empty topic name needs a topic alias (MQTT 5)")
    if p.dup and p.qos is QoS.AT_MOST_ONCE:
        raise ValueError("DUP cannot be set on QoS 0")
    first = 0x30 | (0x08 if p.dup else 0) | (p.qos << 1) | (0x01 if p.retain else 0)
    head = _wire.utf8(p.topic)
    if p.qos:
        head += _packet_id(p.packet_id)
    elif p.packet_id is not None:
        raise ValueError("a QoS 0 PUBLISH has no packet identifier")
    if version is V5:
        head += encode_properties(p.properties, PacketType.PUBLISH)
    return first, head + p.payload


def _ack(packet_id: int, reason: ReasonCode, props: Properties, version: ProtocolVersion,
         packet_type: PacketType, allowed: Collection[ReasonCode]) -> bytes:
    body = _packet_id(packet_id)
    if version is not V5:
        return body
    if props is NO_PROPERTIES or props == NO_PROPERTIES:  # identity first: the usual PUBACK
        if reason is ReasonCode.SUCCESS:
            return body
        return body + _reason(reason, allowed, packet_type.name)
    return (body + _reason(reason, allowed, packet_type.name)
            + encode_properties(props, packet_type))


def _puback(p: Puback, v: ProtocolVersion) -> _Body:
    return 0x40, _ack(p.packet_id, p.reason_code, p.properties, v, PacketType.PUBACK, PUBACK_CODES)


def _pubrec(p: Pubrec, v: ProtocolVersion) -> _Body:
    return 0x50, _ack(p.packet_id, p.reason_code, p.properties, v, PacketType.PUBREC, PUBREC_CODES)


def _pubrel(p: Pubrel, v: ProtocolVersion) -> _Body:
    return 0x62, _ack(p.packet_id, p.reason_code, p.properties, v, PacketType.PUBREL, PUBREL_CODES)


def _pubcomp(p: Pubcomp, v: ProtocolVersion) -> _Body:
    return 0x70, _ack(p.packet_id, p.reason_code, p.properties, v, PacketType.PUBCOMP,
                      PUBCOMP_CODES)


def _subscribe(p: Subscribe, version: ProtocolVersion) -> _Body:
    if not p.subscriptions:
        raise ValueError("SUBSCRIBE needs at least one subscription")
    parts = [_packet_id(p.packet_id)]
    if version is V5:
        if len(p.properties.subscription_identifiers) > 1:
            raise ValueError("SUBSCRIBE carries at most one subscription identifier")
        parts.append(encode_properties(p.properties, PacketType.SUBSCRIBE))
    for s in p.subscriptions:
        if s.no_local and parse_shared(s.topic_filter) is not None:
            raise ValueError("no local cannot be set on a shared subscription")
        options = int(s.qos)
        if version is V5:
            options |= ((0x04 if s.no_local else 0) | (0x08 if s.retain_as_published else 0)
                        | (s.retain_handling << 4))
        parts += [_filter(s.topic_filter), bytes((options,))]
    return 0x82, b"".join(parts)


def _suback(p: Suback, version: ProtocolVersion) -> _Body:
    if not p.reason_codes:
        raise ValueError("SUBACK needs at least one reason code")
    if version is V5:
        codes = b"".join(_reason(c, SUBACK_CODES, "SUBACK") for c in p.reason_codes)
        props = encode_properties(p.properties, PacketType.SUBACK)
        return 0x90, _packet_id(p.packet_id) + props + codes
    return 0x90, _packet_id(p.packet_id) + bytes(v311_suback_code(c) for c in p.reason_codes)


def _unsubscribe(p: Unsubscribe, version: ProtocolVersion) -> _Body:
    if not p.topic_filters:
        raise ValueError("UNSUBSCRIBE needs at least one topic filter")
    parts = [_packet_id(p.packet_id)]
    if version is V5:
        parts.append(encode_properties(p.properties, PacketType.UNSUBSCRIBE))
    parts += [_filter(f) for f in p.topic_filters]
    return 0xA2, b"".join(parts)


def _unsuback(p: Unsuback, version: ProtocolVersion) -> _Body:
    if version is not V5:
        return 0xB0, _packet_id(p.packet_id)
    if not p.reason_codes:
        raise ValueError("an MQTT 5 UNSUBACK needs at least one reason code")
    codes = b"".join(_reason(c, UNSUBACK_CODES, "UNSUBACK") for c in p.reason_codes)
    props = encode_properties(p.properties, PacketType.UNSUBACK)
    return 0xB0, _packet_id(p.packet_id) + props + codes


def _pingreq(_p: Pingreq, _v: ProtocolVersion) -> _Body:
    return 0xC0, b""


def _pingresp(_p: Pingresp, _v: ProtocolVersion) -> _Body:
    return 0xD0, b""


def _disconnect(p: Disconnect, version: ProtocolVersion) -> _Body:
    if version is not V5 or (p.reason_code is ReasonCode.SUCCESS
                             and p.properties == NO_PROPERTIES):
        return 0xE0, b""
    reason = _reason(p.reason_code, DISCONNECT_CODES, "DISCONNECT")
    if p.properties == NO_PROPERTIES:
        return 0xE0, reason
    return 0xE0, reason + encode_properties(p.properties, PacketType.DISCONNECT)


def _auth(p: Auth, version: ProtocolVersion) -> _Body:
    if version is not V5:
        raise ValueError("AUTH exists only in MQTT 5")
    if p.reason_code is ReasonCode.SUCCESS and p.properties == NO_PROPERTIES:
        return 0xF0, b""
    reason = _reason(p.reason_code, AUTH_CODES, "AUTH")
    return 0xF0, reason + encode_properties(p.properties, PacketType.AUTH)


_ENCODERS: dict[type, Callable[[Any, ProtocolVersion], _Body]] = {
    Connect: _connect, Connack: _connack, Publish: _publish, Puback: _puback,
    Pubrec: _pubrec, Pubrel: _pubrel, Pubcomp: _pubcomp, Subscribe: _subscribe,
    Suback: _suback, Unsubscribe: _unsubscribe, Unsuback: _unsuback, Pingreq: _pingreq,
    Pingresp: _pingresp, Disconnect: _disconnect, Auth: _auth,
}


def encode(packet: Packet, version: ProtocolVersion) -> bytes:
    """One complete packet (fixed header, variable header, payload) for `version`."""
    first, body = _ENCODERS[type(packet)](packet, version)
    return bytes((first,)) + _wire.encode_varint(len(body)) + body


_PLAIN_PUBACK = struct.Struct(">BBH")  # type 4, remaining length 2, packet identifier


def encode_puback(packet_id: int, reason: ReasonCode, version: ProtocolVersion) -> bytes:
    """`encode(Puback(packet_id, reason), version)`, without building the packet value: the
    gateway answers every QoS 1 PUBLISH with one, almost always Success."""
    if reason is ReasonCode.SUCCESS or version is not V5:
        if not 1 <= packet_id <= 0xFFFF:
            raise ValueError(f"packet identifier must be 1..65535, not {packet_id!r}")
        return _PLAIN_PUBACK.pack(0x40, 2, packet_id)
    return encode(Puback(packet_id, reason), version)

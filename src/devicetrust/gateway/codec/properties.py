"""MQTT 5 properties (spec 2.2.2): every property identifier of the spec, its data type, the
packets it may appear in, and the values it may take.

Decoding refuses an unknown identifier or one not allowed in the packet (Malformed Packet,
spec 2.2.2.2), a second occurrence of any property but User Property and Subscription
Identifier, and out-of-range values (Protocol Error, as each property's section says).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Final

from . import _wire
from .errors import MalformedPacket, ProtocolError
from .kinds import PacketType


class PropertyId(enum.IntEnum):
    PAYLOAD_FORMAT_INDICATOR = 0x01
    MESSAGE_EXPIRY_INTERVAL = 0x02
    CONTENT_TYPE = 0x03
    RESPONSE_TOPIC = 0x08
    CORRELATION_DATA = 0x09
    SUBSCRIPTION_IDENTIFIER = 0x0B
    SESSION_EXPIRY_INTERVAL = 0x11
    ASSIGNED_CLIENT_IDENTIFIER = 0x12
    SERVER_KEEP_ALIVE = 0x13
    AUTHENTICATION_METHOD = 0x15
    AUTHENTICATION_DATA = 0x16
    REQUEST_PROBLEM_INFORMATION = 0x17
    WILL_DELAY_INTERVAL = 0x18
    REQUEST_RESPONSE_INFORMATION = 0x19
    RESPONSE_INFORMATION = 0x1A
    SERVER_REFERENCE = 0x1C
    REASON_STRING = 0x1F
    RECEIVE_MAXIMUM = 0x21
    TOPIC_ALIAS_MAXIMUM = 0x22
    TOPIC_ALIAS = 0x23
    MAXIMUM_QOS = 0x24
    RETAIN_AVAILABLE = 0x25
    USER_PROPERTY = 0x26
    MAXIMUM_PACKET_SIZE = 0x27
    WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
    SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29
    SHARED_SUBSCRIPTION_AVAILABLE = 0x2A


@dataclass(frozen=True, slots=True)
class Properties:
    """The properties of one packet (or of a will). None / () means absent."""

    payload_format_indicator: int | None = None  # 0 unspecified bytes, 1 UTF-8
    message_expiry_interval: int | None = None
    content_type: str | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    subscription_identifiers: tuple[int, ...] = ()
    session_expiry_interval: int | None = None
    assigned_client_identifier: str | None = None
    server_keep_alive: int | None = None
    authentication_method: str | None = None
    authentication_data: bytes | None = None
    request_problem_information: bool | None = None
    will_delay_interval: int | None = None
    request_response_information: bool | None = None
    response_information: str | None = None
    server_reference: str | None = None
    reason_string: str | None = None
    receive_maximum: int | None = None
    topic_alias_maximum: int | None = None
    topic_alias: int | None = None
    maximum_qos: int | None = None
    retain_available: bool | None = None
    user_properties: tuple[tuple[str, str], ...] = ()
    maximum_packet_size: int | None = None
    wildcard_subscription_available: bool | None = None
    subscription_identifier_available: bool | None = None
    shared_subscription_available: bool | None = None


NO_PROPERTIES: Final = Properties()

# Where a property may appear: a packet type, or WILL for the will properties of CONNECT.
WILL: Final = 0
_C, _CA, _P = PacketType.CONNECT, PacketType.CONNACK, PacketType.PUBLISH
_ACKS = (PacketType.PUBACK, PacketType.PUBREC, PacketType.PUBREL, PacketType.PUBCOMP)
_ALL = frozenset((WILL, *PacketType))


class _Kind(enum.Enum):
    BYTE = 1
    U16 = 2
    U32 = 4
    VARINT = 5
    UTF8 = 6
    BINARY = 7
    PAIR = 8


@dataclass(frozen=True, slots=True)
class _Spec:
    field: str
    kind: _Kind
    where: frozenset[int]
    check: Callable[[Any], bool] | None = None  # a failed check is a Protocol Error


def _flag(value: int) -> bool:
    return value in (0, 1)


def _nonzero(value: int) -> bool:
    return value != 0


def _spec(field: str, kind: _Kind, *where: int, check: Callable[[Any], bool] | None = None
          ) -> _Spec:
    return _Spec(field, kind, frozenset(where), check)


_B, _U16, _U32, _VI, _S, _BIN = (
    _Kind.BYTE, _Kind.U16, _Kind.U32, _Kind.VARINT, _Kind.UTF8, _Kind.BINARY
)
_SPECS: Final[dict[int, _Spec]] = {
    0x01: _spec("payload_format_indicator", _B, _P, WILL, check=_flag),
    0x02: _spec("message_expiry_interval", _U32, _P, WILL),
    0x03: _spec("content_type", _S, _P, WILL),
    0x08: _spec("response_topic", _S, _P, WILL),
    0x09: _spec("correlation_data", _BIN, _P, WILL),
    0x0B: _spec("subscription_identifiers", _VI, _P, PacketType.SUBSCRIBE, check=_nonzero),
    0x11: _spec("session_expiry_interval", _U32, _C, _CA, PacketType.DISCONNECT),
    0x12: _spec("assigned_client_identifier", _S, _CA),
    0x13: _spec("server_keep_alive", _U16, _CA),
    0x15: _spec("authentication_method", _S, _C, _CA, PacketType.AUTH),
    0x16: _spec("authentication_data", _BIN, _C, _CA, PacketType.AUTH),
    0x17: _spec("request_problem_information", _B, _C, check=_flag),
    0x18: _spec("will_delay_interval", _U32, WILL),
    0x19: _spec("request_response_information", _B, _C, check=_flag),
    0x1A: _spec("response_information", _S, _CA),
    0x1C: _spec("server_reference", _S, _CA, PacketType.DISCONNECT),
    0x1F: _spec("reason_string", _S, _CA, *_ACKS, PacketType.SUBACK, PacketType.UNSUBACK,
                PacketType.DISCONNECT, PacketType.AUTH),
    0x21: _spec("receive_maximum", _U16, _C, _CA, check=_nonzero),
    0x22: _spec("topic_alias_maximum", _U16, _C, _CA),
    0x23: _spec("topic_alias", _U16, _P, check=_nonzero),
    0x24: _spec("maximum_qos", _B, _CA, check=_flag),
    0x25: _spec("retain_available", _B, _CA, check=_flag),
    0x26: _Spec("user_properties", _Kind.PAIR, _ALL - {PacketType.PINGREQ, PacketType.PINGRESP}),
    0x27: _spec("maximum_packet_size", _U32, _C, _CA, check=_nonzero),
    0x28: _spec("wildcard_subscription_available", _B, _CA, check=_flag),
    0x29: _spec("subscription_identifier_available", _B, _CA, check=_flag),
    0x2A: _spec("shared_subscription_available", _B, _CA, check=_flag),
}
_REPEATABLE: Final = frozenset((0x0B, 0x26))
_BOOLEAN_FIELDS: Final = frozenset((
    "request_problem_information", "request_response_information", "retain_available",
    "wildcard_subscription_available", "subscription_identifier_available",
    "shared_subscription_available",
))
assert len(_SPECS) == len(PropertyId) == len(fields(Properties))  # the table is complete


def _read_value(reader: _wire.Reader, kind: _Kind, what: str) -> Any:
    if kind is _Kind.BYTE:
        return reader.u8(what)
    if kind is _Kind.U16:
        return reader.u16(what)
    if kind is _Kind.U32:
        return reader.u32(what)
    if kind is _Kind.VARINT:
        return reader.varint(what)
    if kind is _Kind.UTF8:
        return reader.utf8(what)
    if kind is _Kind.BINARY:
        return reader.binary(what)
    return (reader.utf8(what + " name"), reader.utf8(what + " value"))


def decode_properties(reader: _wire.Reader, where: int) -> Properties:
    """Read a property length and the properties it covers; `where` is a PacketType or WILL."""
    length = reader.varint("property length")
    if length == 0:
        return NO_PROPERTIES
    block = reader.sub(length, "property block")
    values: dict[str, Any] = {}
    user: list[tuple[str, str]] = []
    sub_ids: list[int] = []
    while block.remaining:
        ident = block.varint("property identifier")
        spec = _SPECS.get(ident)
        if spec is None:
            raise MalformedPacket(f"unknown property identifier 0x{ident:02X}")
        if where not in spec.where:
            raise MalformedPacket(f"property {spec.field} (0x{ident:02X}) is not allowed here")
        value = _read_value(block, spec.kind, spec.field)
        if spec.check is not None and not spec.check(value):
            raise ProtocolError(f"property {spec.field} has an invalid value {value!r}")
        if ident == PropertyId.USER_PROPERTY:
            user.append(value)
        elif ident == PropertyId.SUBSCRIPTION_IDENTIFIER:
            sub_ids.append(value)
        elif spec.field in values:
            raise ProtocolError(f"property {spec.field} appears more than once")
        else:
            values[spec.field] = bool(value) if spec.field in _BOOLEAN_FIELDS else value
    return Properties(**values, user_properties=tuple(user),
                      subscription_identifiers=tuple(sub_ids))


def _write_value(out: bytearray, kind: _Kind, value: Any) -> None:
    if kind is _Kind.BYTE:
        out.append(int(value))
    elif kind is _Kind.U16:
        out += _wire.u16(value)
    elif kind is _Kind.U32:
        out += _wire.u32(value)
    elif kind is _Kind.VARINT:
        out += _wire.encode_varint(value)
    elif kind is _Kind.UTF8:
        out += _wire.utf8(value)
    elif kind is _Kind.BINARY:
        out += _wire.binary(value)
    else:
        out += _wire.utf8(value[0])
        out += _wire.utf8(value[1])


def encode_properties(props: Properties, where: int) -> bytes:
    """The property length followed by the properties, in identifier order (user properties
    and subscription identifiers keep their order). Refuses what decoding would refuse."""
    if props is NO_PROPERTIES or props == NO_PROPERTIES:
        return b"\x00"
    out = bytearray()
    for ident, spec in _SPECS.items():
        value = getattr(props, spec.field)
        if ident in _REPEATABLE:
            items = value
        elif value is None:
            continue
        else:
            items = (value,)
        for item in items:
            if where not in spec.where:
                raise ValueError(f"property {spec.field} is not allowed in this packet")
            if spec.check is not None and not spec.check(item):
                raise ValueError(f"property {spec.field} has an invalid value {item!r}")
            out.append(ident)  # every identifier is below 0x80: a one-byte varint
            _write_value(out, spec.kind, item)
    return _wire.encode_varint(len(out)) + bytes(out)

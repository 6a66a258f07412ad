"""Spec conformance: hand-written byte sequences (many from the MQTT 3.1.1 and 5.0 texts) and
the packet each decodes to, or the error and reason code each must raise."""

from __future__ import annotations

import pytest

from devicetrust.gateway.codec import (
    Connack,
    Connect,
    Decoder,
    Disconnect,
    MalformedPacket,
    MqttError,
    Packet,
    PacketTooLarge,
    Pingreq,
    Pingresp,
    Properties,
    ProtocolError,
    ProtocolVersion,
    Puback,
    Publish,
    QoS,
    ReasonCode,
    Suback,
    Subscribe,
    Subscription,
    Unsubscribe,
    UnsupportedProtocolVersion,
    Will,
    decode,
    encode,
)
from devicetrust.gateway.codec._wire import Reader, decode_varint, encode_varint

V311, V5 = ProtocolVersion.V311, ProtocolVersion.V5


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# (name, version, bytes, packet): decodes to exactly this packet, and encodes back to the bytes.
VALID: list[tuple[str, ProtocolVersion, bytes, Packet]] = [
    # MQTT 3.1.1 section 3.1.2.10, Figure 3.6: "MQTT", level 4, flags 0xCE (user name,
    # password, will QoS 1, will flag, clean session), keep alive 10; payload added here.
    ("3.1.1 CONNECT example", V311,
     h("10 29 0004 4D515454 04 CE 000A 0008 636C69656E742D31 0003 612F62 0002 6869"
       "0004 75736572 0004 70617373"),
     Connect(V311, "client-1", True, 10, "user", b"pass", Will("a/b", b"hi", QoS(1)))),
    # MQTT 5.0 section 3.1.2.12, Figure 3-8: the same flags, properties: session expiry 10.
    ("5.0 CONNECT example", V5,
     h("10 30 0004 4D515454 05 CE 000A 05 11 0000000A 0008 636C69656E742D31"
       "00 0003 612F62 0002 6869 0004 75736572 0004 70617373"),
     Connect(V5, "client-1", True, 10, "user", b"pass", Will("a/b", b"hi", QoS(1)),
             Properties(session_expiry_interval=10))),
    ("3.1.1 CONNACK accepted", V311, h("20 02 00 00"), Connack()),
    ("3.1.1 CONNACK bad user name or password", V311, h("20 02 00 04"),
     Connack(reason_code=ReasonCode.BAD_USER_NAME_OR_PASSWORD)),
    ("5.0 CONNACK not authorized", V5, h("20 03 00 87 00"),
     Connack(reason_code=ReasonCode.NOT_AUTHORIZED)),
    ("5.0 CONNACK quota exceeded", V5, h("20 03 00 97 00"),
     Connack(reason_code=ReasonCode.QUOTA_EXCEEDED)),
    # 3.1.1 section 3.3.2.3, Figure 3.11: topic "a/b", packet identifier 10.
    ("3.1.1 PUBLISH example", V311, h("32 0C 0003 612F62 000A 68656C6C6F"),
     Publish("a/b", b"hello", QoS(1), packet_id=10)),
    # 5.0 section 1.5.4, Figure 1-1: "A" U+2A6D4 as 00 05 41 F0 AA 9B 94.
    ("5.0 UTF-8 example as a topic", V5, h("30 08 0005 41F0AA9B94 00"),
     Publish("A\U0002a6d4")),
    ("5.0 PUBLISH user properties", V5,
     h("30 12 0001 74 0E 26 0001 6B 0001 76 26 0001 6B 0001 77"),
     Publish("t", properties=Properties(user_properties=(("k", "v"), ("k", "w"))))),
    ("5.0 PUBACK no matching subscribers", V5, h("40 03 0001 10"),
     Puback(1, ReasonCode.NO_MATCHING_SUBSCRIBERS)),
    ("5.0 PUBACK success, short form", V5, h("40 02 0001"), Puback(1)),
    # 3.1.1 section 3.8.3.1, Figure 3.23: "a/b" QoS 1, "c/d" QoS 2, packet identifier 10.
    ("3.1.1 SUBSCRIBE example", V311, h("82 0E 000A 0003 612F62 01 0003 632F64 02"),
     Subscribe(10, (Subscription("a/b", QoS(1)), Subscription("c/d", QoS(2))))),
    # 3.1.1 section 3.9.3, Figure 3.26: granted 0, granted 2, failure.
    ("3.1.1 SUBACK example", V311, h("90 05 000A 00 02 80"),
     Suback(10, (ReasonCode.GRANTED_QOS_0, ReasonCode.GRANTED_QOS_2,
                 ReasonCode.UNSPECIFIED_ERROR))),
    # 3.1.1 section 3.10.3, Figure 3.30.
    ("3.1.1 UNSUBSCRIBE example", V311, h("A2 0C 000A 0003 612F62 0003 632F64"),
     Unsubscribe(10, ("a/b", "c/d"))),
    ("PINGREQ", V311, h("C0 00"), Pingreq()),
    ("PINGRESP", V5, h("D0 00"), Pingresp()),
    ("3.1.1 DISCONNECT", V311, h("E0 00"), Disconnect()),
    ("5.0 DISCONNECT session taken over, no properties", V5, h("E0 01 8E"),
     Disconnect(ReasonCode.SESSION_TAKEN_OVER)),
]


@pytest.mark.parametrize(("name", "version", "data", "packet"), VALID,
                         ids=[case[0] for case in VALID])
def test_spec_bytes_decode_and_encode(name: str, version: ProtocolVersion, data: bytes,
                                      packet: Packet) -> None:
    assert decode(data, version) == packet
    assert encode(packet, version) == data


# Spec 1.5.5 (Table 1-1 / 2.2): the boundaries of the 1..4-byte variable byte integers.
VARINTS = [
    (0, "00"), (127, "7F"), (128, "8001"), (16383, "FF7F"), (16384, "808001"),
    (2097151, "FFFF7F"), (2097152, "80808001"), (268435455, "FFFFFF7F"),
]


@pytest.mark.parametrize(("value", "encoded"), VARINTS)
def test_variable_byte_integer_boundaries(value: int, encoded: str) -> None:
    data = h(encoded)
    assert encode_varint(value) == data
    assert decode_varint(data, 0, len(data), "x") == (value, len(data))


@pytest.mark.parametrize("length", [127, 128, 16383, 16384])
def test_remaining_length_boundaries_frame_whole_packets(length: int) -> None:
    topic = b"\x00\x01t"
    data = encode_varint(length)
    packet = b"\x30" + data + topic + b"x" * (length - len(topic))
    assert Decoder(V311).feed(packet + b"\xc0\x00") == [
        Publish("t", b"x" * (length - len(topic))), Pingreq()]


def test_variable_byte_integer_refuses_five_bytes_and_non_minimal_forms() -> None:
    for data in (h("8080808001"), h("FFFFFFFF7F"), h("8000"), h("808000")):
        with pytest.raises(MalformedPacket):
            decode_varint(data, 0, len(data), "x")
    with pytest.raises(ValueError):
        encode_varint(268435456)


def test_the_spec_utf8_example_reads_as_one_supplementary_character() -> None:
    assert Reader(h("0005 41F0AA9B94")).utf8("s") == "A\U0002a6d4"


def connect(flags: str, version: int = 4, name: str = "0004 4D515454", tail: str = "") -> bytes:
    props = "00" if version == 5 else ""
    body = h(f"{name} {version:02X} {flags} 003C {props} 0001 63") + h(tail)
    return b"\x10" + encode_varint(len(body)) + body


def publish(body: str, first: str = "30") -> bytes:
    raw = h(body)
    return h(first) + encode_varint(len(raw)) + raw


CONNECT_5 = connect("02", 5)
INVALID: list[tuple[str, ProtocolVersion | None, bytes, type[MqttError], int]] = [
    ("5th remaining-length byte", V311, h("C0 80808080 01"), MalformedPacket, 0x81),
    ("non-minimal remaining length", V311, h("C0 8000"), MalformedPacket, 0x81),
    ("reserved packet type 0", V311, h("00 00"), MalformedPacket, 0x81),
    ("AUTH in 3.1.1", V311, h("F0 00"), MalformedPacket, 0x81),
    ("PINGREQ flags", V311, h("C1 00"), MalformedPacket, 0x81),
    ("SUBSCRIBE flags 0", V311, h("80 06 0001 0001 23 00"), MalformedPacket, 0x81),
    ("PUBREL flags 0", V5, h("60 02 0001"), MalformedPacket, 0x81),
    ("PINGREQ with a body", V311, h("C0 01 00"), MalformedPacket, 0x81),
    ("PUBLISH QoS 3", V311, publish("0001 74 0001", "36"), MalformedPacket, 0x81),
    ("PUBLISH QoS 0 with DUP", V311, publish("0001 74", "38"), MalformedPacket, 0x81),
    ("PUBLISH topic with #", V311, publish("0003 612F23"), MalformedPacket, 0x81),
    ("PUBLISH topic with +", V5, publish("0003 2B2F62 00"), MalformedPacket, 0x81),
    ("PUBLISH packet identifier 0", V311, publish("0001 74 0000", "32"), MalformedPacket, 0x81),
    ("PUBLISH empty topic 3.1.1", V311, publish("0000"), MalformedPacket, 0x81),
    ("PUBLISH empty topic without alias", V5, publish("0000 00"), ProtocolError, 0x82),
    ("U+0000 in a topic", V311, publish("0003 610062"), MalformedPacket, 0x81),
    ("UTF-16 surrogate in a topic", V311, publish("0003 EDA080"), MalformedPacket, 0x81),
    ("overlong UTF-8 in a topic", V311, publish("0002 C080"), MalformedPacket, 0x81),
    ("invalid UTF-8 byte in a topic", V311, publish("0001 FF"), MalformedPacket, 0x81),
    ("string longer than the packet", V311, publish("0009 74"), MalformedPacket, 0x81),
    ("duplicate property", V5, publish("0001 74 0A 02 00000001 02 00000002"),
     ProtocolError, 0x82),
    ("property not allowed in PUBLISH", V5, publish("0001 74 05 11 00000001"),
     MalformedPacket, 0x81),
    ("unknown property identifier", V5, publish("0001 74 02 7F 00"), MalformedPacket, 0x81),
    ("property length past the end", V5, publish("0001 74 09 01 01"), MalformedPacket, 0x81),
    ("topic alias 0", V5, publish("0001 74 03 23 0000"), ProtocolError, 0x82),
    ("payload format indicator 2", V5, publish("0001 74 02 01 02"), ProtocolError, 0x82),
    ("PUBACK reason not allowed", V5, h("40 03 0001 04"), MalformedPacket, 0x81),
    ("PUBACK in 3.1.1 with a reason", V311, h("40 03 0001 00"), MalformedPacket, 0x81),
    ("filter # not last", V311, h("82 08 0001 0003 232F61 00"), MalformedPacket, 0x81),
    ("filter + not alone", V311, h("82 07 0001 0002 612B 00"), MalformedPacket, 0x81),
    ("shared filter without a filter", V5, h("82 0F 0001 00 0009 247368617265 2F672F 00"),
     MalformedPacket, 0x81),
    ("SUBSCRIBE without filters", V311, h("82 02 0001"), ProtocolError, 0x82),
    ("SUBSCRIBE 3.1.1 reserved option bits", V311, h("82 06 0001 0001 23 04"),
     MalformedPacket, 0x81),
    ("SUBSCRIBE retain handling 3", V5, h("82 07 0001 00 0001 23 30"), ProtocolError, 0x82),
    ("SUBSCRIBE 5.0 reserved option bits", V5, h("82 07 0001 00 0001 23 C0"),
     MalformedPacket, 0x81),
    ("SUBSCRIBE QoS 3", V5, h("82 07 0001 00 0001 23 03"), MalformedPacket, 0x81),
    ("no local on a shared subscription", V5,
     h("82 10 0001 00 000A 2473686172652F672F23 04"), ProtocolError, 0x82),
    ("two subscription identifiers in SUBSCRIBE", V5, h("82 0A 0001 04 0B01 0B02 0001 23 00"),
     ProtocolError, 0x82),
    ("UNSUBSCRIBE without filters", V5, h("A2 03 0001 00"), ProtocolError, 0x82),
    ("3.1.1 CONNACK return code 6", V311, h("20 02 00 06"), MalformedPacket, 0x81),
    ("CONNACK session present with a refusal", V5, h("20 03 01 87 00"), ProtocolError, 0x82),
    ("packet before CONNECT", None, h("C0 00"), ProtocolError, 0x82),
    ("CONNECT MQIsdp level 3", None, connect("02", 3, "0006 4D5149736470"), ProtocolError, 0x84),
    ("CONNECT level 6", None, connect("02", 6), UnsupportedProtocolVersion, 0x84),
    ("CONNECT reserved flag", None, connect("03"), MalformedPacket, 0x81),
    ("CONNECT will QoS 3", None, connect("1E", tail="0001 74 0000"), MalformedPacket, 0x81),
    ("CONNECT will QoS without will", None, connect("0A"), MalformedPacket, 0x81),
    ("CONNECT will retain without will", None, connect("22"), MalformedPacket, 0x81),
    ("3.1.1 CONNECT password without user", None, connect("42", tail="0001 70"),
     MalformedPacket, 0x81),
    ("CONNECT trailing byte", None, connect("02", tail="00"), MalformedPacket, 0x81),
    ("CONNECT truncated", None, connect("C2"), MalformedPacket, 0x81),
    ("CONNECT will topic with wildcard", None, connect("06", tail="0001 23 0000"),
     MalformedPacket, 0x81),
    ("CONNECT authentication data without method", None,
     h("10 12 0004 4D515454 05 02 003C 04 16 0001 78 0001 63"), ProtocolError, 0x82),
    ("packet over the maximum size", V5, h("30 FFFFFF7F"), PacketTooLarge, 0x95),
]


@pytest.mark.parametrize(("name", "version", "data", "error", "reason"), INVALID,
                         ids=[case[0] for case in INVALID])
def test_spec_violations_raise_with_their_reason_code(
        name: str, version: ProtocolVersion | None, data: bytes, error: type[MqttError],
        reason: int) -> None:
    decoder = Decoder(version)
    with pytest.raises(error) as info:
        decoder.feed(data)
    assert info.value.reason_code == reason
    assert info.value.code.startswith("mqtt.")
    # The stream is broken for good: the next call raises too, whatever it is given.
    with pytest.raises(error):
        decoder.feed(h("C0 00"))


def test_a_256_mb_length_header_is_refused_before_any_body_arrives() -> None:
    decoder = Decoder(V5, max_packet_size=1024 * 1024)
    with pytest.raises(PacketTooLarge) as info:
        decoder.feed(h("32 FFFFFF7F") + b"\x00" * 10)
    assert info.value.reason_code is ReasonCode.PACKET_TOO_LARGE
    assert decoder.buffered < 16


def test_maximum_packet_size_counts_the_whole_packet() -> None:
    data = encode(Publish("t", b"x" * 10), V311)  # 2 + 3 + 10 bytes
    assert Decoder(V311, max_packet_size=len(data)).feed(data) == [Publish("t", b"x" * 10)]
    with pytest.raises(PacketTooLarge):
        Decoder(V311, max_packet_size=len(data) - 1).feed(data)


def test_user_properties_and_subscription_identifiers_may_repeat() -> None:
    packet = decode(publish("0001 74 12 0B01 0B02 26 0001 61 0001 62 26 0001 61 0001 62"), V5)
    assert isinstance(packet, Publish)
    assert packet.properties.subscription_identifiers == (1, 2)
    assert packet.properties.user_properties == (("a", "b"), ("a", "b"))


def test_v5_connect_sets_the_decoder_version() -> None:
    decoder = Decoder()
    [packet] = decoder.feed(CONNECT_5)
    assert packet == Connect(V5, "c", True, 60)
    assert decoder.version is V5
    assert decoder.feed(h("E0 01 04")) == [Disconnect(ReasonCode.DISCONNECT_WITH_WILL_MESSAGE)]


def test_packets_split_across_feeds_and_several_in_one_feed() -> None:
    stream = encode(Publish("a", b"1"), V311) + encode(Pingreq(), V311) + encode(Puback(9), V311)
    decoder = Decoder(V311)
    assert decoder.feed(stream[:3]) == []
    assert decoder.buffered == 3
    assert decoder.feed(stream[3:]) == [Publish("a", b"1"), Pingreq(), Puback(9)]
    assert decoder.buffered == 0


def test_next_packet_yields_packets_up_to_a_violation() -> None:
    decoder = Decoder(V311)
    decoder.receive(encode(Puback(1), V311) + h("C1 00"))
    assert decoder.next_packet() == Puback(1)
    with pytest.raises(MalformedPacket):
        decoder.next_packet()


def test_v311_encoding_drops_what_311_cannot_carry() -> None:
    assert encode(Connack(reason_code=ReasonCode.BANNED), V311) == h("20 02 00 05")
    assert encode(Connack(reason_code=ReasonCode.QUOTA_EXCEEDED), V311) == h("20 02 00 05")
    assert encode(Suback(1, (ReasonCode.NOT_AUTHORIZED,)), V311) == h("90 03 0001 80")
    assert encode(Puback(1, ReasonCode.QUOTA_EXCEEDED), V311) == h("40 02 0001")
    props = Properties(user_properties=(("a", "b"),))
    assert encode(Publish("t", b"", properties=props), V311) == h("30 03 0001 74")


@pytest.mark.parametrize("packet", [
    Publish("a/#"), Publish("t", qos=QoS(1)), Publish("t", dup=True), Puback(0),
    Subscribe(1, ()), Subscribe(1, (Subscription("a#"),)), Suback(1, ()),
    Connack(True, ReasonCode.NOT_AUTHORIZED), Puback(1, ReasonCode.BANNED),
    Publish("t", properties=Properties(session_expiry_interval=1)),
    Publish("t", properties=Properties(topic_alias=0)),
])
def test_encoder_refuses_what_the_decoder_would_refuse(packet: Packet) -> None:
    with pytest.raises(ValueError):
        encode(packet, V5)


def test_unsupported_protocol_version_says_which_level_was_asked() -> None:
    with pytest.raises(UnsupportedProtocolVersion) as info:
        Decoder().feed(connect("02", 3, "0006 4D5149736470"))
    assert info.value.details == {"protocol_name": "MQIsdp", "protocol_level": 3}
    # A 3.1.1-era client is answered with CONNACK return code 1.
    assert encode(Connack(reason_code=info.value.reason_code), V311) == h("20 02 00 01")


def test_decode_wants_exactly_one_complete_packet() -> None:
    with pytest.raises(MalformedPacket):
        decode(h("C0 00 C0 00"), V311)
    with pytest.raises(MalformedPacket):
        decode(h("30 05 0003 61"), V311)
    with pytest.raises(ValueError):
        Decoder(max_packet_size=1)


@pytest.mark.parametrize("packet", [
    Subscribe(1, (Subscription("$share/g/a", no_local=True),)),
    Connect(V5, "c", properties=Properties(authentication_data=b"x")),
    Connect(V5, "c", keep_alive=70000),
    Publish("t", qos=QoS(1), packet_id=70000),
])
def test_encoder_refuses_more_of_what_the_decoder_refuses(packet: Packet) -> None:
    with pytest.raises(ValueError):
        encode(packet, V5)

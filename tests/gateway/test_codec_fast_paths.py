"""The codec's fast paths for the gateway's hot path give exactly what the general code gives:
the plain-PUBLISH decoder (equal packet, or it declines and the general decoder decides) and
the PUBACK encoder (the same bytes)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from devicetrust.gateway.codec import (
    MqttError,
    ProtocolVersion,
    Puback,
    Publish,
    ReasonCode,
    encode,
    encode_puback,
)
from devicetrust.gateway.codec._decode import decode_plain_publish, decode_publish
from devicetrust.gateway.codec._wire import decode_varint
from devicetrust.gateway.codec.reason_codes import PUBACK_CODES

from .strategies import publishes, versions


def general(first: int, body: bytes, version: ProtocolVersion) -> Publish | type[MqttError]:
    try:
        return decode_publish(first, body, version)
    except MqttError as e:
        return type(e)


@st.composite
def encoded_publish(draw: st.DrawFn) -> tuple[ProtocolVersion, int, bytes]:
    """A valid PUBLISH's first byte and body, sometimes with bytes changed."""
    version = draw(versions)
    data = bytearray(encode(draw(publishes(version)), version))
    _, start = decode_varint(bytes(data), 1, len(data), "remaining length")
    first, body = data[0], data[start:]
    for _ in range(draw(st.integers(0, 2))):
        if body:
            body[draw(st.integers(0, len(body) - 1))] = draw(
                st.sampled_from([0x00, 0x23, 0x2B, 0x80, 0xFF, 0x01])
            )
    if draw(st.booleans()):
        first = 0x30 | draw(st.integers(0, 15))
    return version, first, bytes(body)


@settings(max_examples=500)
@given(
    st.one_of(
        encoded_publish(), st.tuples(versions, st.integers(0x30, 0x3F), st.binary(max_size=40))
    )
)
def test_the_plain_publish_decoder_agrees_with_the_general_one(
    case: tuple[ProtocolVersion, int, bytes],
) -> None:
    version, first, body = case
    # Framed inside a larger buffer, as in the decoder's receive buffer.
    buffer = bytearray(b"\x99\x98" + body + b"\x97")
    fast = decode_plain_publish(first, buffer, 2, 2 + len(body), version)
    if fast is not None:
        assert fast == general(first, body, version)


def test_the_plain_publish_decoder_takes_what_devices_usually_send() -> None:
    publish = Publish("devices/x/telemetry", b'{"rpm": 1}', qos=1, packet_id=7)
    for version in ProtocolVersion:
        data = encode(publish, version)
        assert decode_plain_publish(data[0], data, 2, len(data), version) == publish


@settings(max_examples=300)
@given(versions, st.integers(1, 0xFFFF), st.sampled_from(sorted(PUBACK_CODES)))
def test_the_puback_encoder_writes_what_encode_writes(
    version: ProtocolVersion, packet_id: int, reason: ReasonCode
) -> None:
    assert encode_puback(packet_id, reason, version) == encode(Puback(packet_id, reason), version)

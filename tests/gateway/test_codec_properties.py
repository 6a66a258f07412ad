"""Property tests of the MQTT codec: round trips, robustness to garbage, chunking invariance."""

from __future__ import annotations

import contextlib
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from devicetrust.gateway.codec import (
    Connect,
    Decoder,
    MqttError,
    Packet,
    ProtocolVersion,
    decode,
    encode,
)

from .strategies import connects, packets, versions


@st.composite
def version_and_packet(draw: st.DrawFn) -> tuple[ProtocolVersion, Packet]:
    version = draw(versions)
    return version, draw(packets(version))


@st.composite
def version_and_stream(draw: st.DrawFn) -> tuple[ProtocolVersion, list[Packet]]:
    """A CONNECT followed by packets of its version, as a server would receive them."""
    version = draw(versions)
    connect = draw(connects(version))
    rest = draw(st.lists(packets(version, connect=False), max_size=6))
    return version, [connect, *rest]


def drain(decoder: Decoder, chunks: list[bytes]) -> tuple[list[Packet], type | None]:
    """Feed chunk by chunk, taking packets one at a time; stop at the first error."""
    packets: list[Packet] = []
    try:
        for chunk in chunks:
            decoder.receive(chunk)
            while (packet := decoder.next_packet()) is not None:
                packets.append(packet)
    except MqttError as e:
        return packets, type(e)
    return packets, None


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=400)
@given(version_and_packet())
def test_every_packet_round_trips_in_both_versions(vp: tuple[ProtocolVersion, Packet]) -> None:
    version, packet = vp
    data = encode(packet, version)
    assert decode(data, version) == packet
    # A server learns the version from the CONNECT itself.
    if isinstance(packet, Connect):
        assert decode(data) == packet


@settings(max_examples=200)
@given(version_and_stream())
def test_a_stream_decodes_to_its_packets_in_order(vs: tuple[ProtocolVersion, list[Packet]]) -> None:
    version, stream = vs
    decoder = Decoder()
    assert decoder.feed(b"".join(encode(p, version) for p in stream)) == stream
    assert decoder.version is version
    assert decoder.buffered == 0


@settings(max_examples=300)
@given(st.one_of(st.none(), versions), st.binary(max_size=300))
def test_random_bytes_raise_only_codec_errors(version: ProtocolVersion | None,
                                              data: bytes) -> None:
    with contextlib.suppress(MqttError):
        Decoder(version, max_packet_size=4096).feed(data)


@st.composite
def mutated_stream(draw: st.DrawFn) -> tuple[ProtocolVersion, bytes]:
    version, stream = draw(version_and_stream())
    data = bytearray(b"".join(encode(p, version) for p in stream))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF, 0x23, 0x2B, 0xC0, 0xED]))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif data:
            del data[at : at + draw(st.integers(1, 4))]
    return version, bytes(data)


@settings(max_examples=250)
@given(mutated_stream())
def test_mutated_valid_streams_raise_only_codec_errors(vd: tuple[ProtocolVersion, bytes]) -> None:
    _, data = vd
    packets, _error = drain(Decoder(max_packet_size=8192), [data])
    for packet in packets:  # whatever was accepted must re-encode (it is a valid packet)
        if isinstance(packet, Connect):
            version = packet.protocol_version
        encode(packet, version)


@settings(max_examples=200)
@given(st.one_of(version_and_stream().map(
           lambda vs: b"".join(encode(p, vs[0]) for p in vs[1])),
                 mutated_stream().map(lambda vd: vd[1])),
       st.lists(st.integers(0, 10_000), max_size=12))
def test_any_chunking_gives_the_same_packets_and_error(data: bytes, cuts: list[int]) -> None:
    whole = drain(Decoder(max_packet_size=8192), [data])
    chunked = drain(Decoder(max_packet_size=8192), split(data, cuts))
    bytewise = drain(Decoder(max_packet_size=8192), [data[i : i + 1] for i in range(len(data))])
    assert chunked == whole
    assert bytewise == whole

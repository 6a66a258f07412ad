"""The fuzz target of the MQTT decoder, shared by the coverage-guided fuzzer
(scripts/fuzz_mqtt.py, atheris) and the short corpus-and-mutation run in the test suite.

For one input (raw bytes as they would arrive on a connection) it checks, for a server that
does not know the version yet and for clients of either version:

- decoding raises nothing but the codec's own `MqttError`;
- the packets and the error are the same whether the bytes come at once or in 7-byte chunks;
- every packet the decoder accepted encodes again and decodes back to itself.

Anything else (another exception, an AssertionError) is a finding.
"""

from __future__ import annotations

from devicetrust.gateway.codec import (
    Connect,
    Decoder,
    MqttError,
    Packet,
    ProtocolVersion,
    decode,
    encode,
)

MAX_PACKET_SIZE = 64 * 1024
VERSIONS = (None, ProtocolVersion.V311, ProtocolVersion.V5)


def drain(version: ProtocolVersion | None, data: bytes,
          chunk: int) -> tuple[list[Packet], type[MqttError] | None]:
    decoder = Decoder(version, max_packet_size=MAX_PACKET_SIZE)
    packets: list[Packet] = []
    try:
        for start in range(0, len(data), chunk):
            decoder.receive(data[start : start + chunk])
            while (packet := decoder.next_packet()) is not None:
                packets.append(packet)
    except MqttError as e:
        return packets, type(e)
    return packets, None


def one_input(data: bytes) -> list[Packet]:
    """Run the checks; returns the packets decoded with an unknown version (for reports)."""
    result: list[Packet] = []
    for version in VERSIONS:
        packets, error = drain(version, data, max(len(data), 1))
        if drain(version, data, 7) != (packets, error):
            raise AssertionError(f"chunking changed the result for {version!r}")
        current = version
        for packet in packets:
            if isinstance(packet, Connect):
                current = packet.protocol_version
            assert current is not None
            if decode(encode(packet, current), current) != packet:
                raise AssertionError(f"{packet!r} does not round-trip")
        if version is None:
            result = packets
    return result

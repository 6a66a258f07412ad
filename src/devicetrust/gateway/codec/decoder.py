"""The incremental decoder: bytes from a connection in, whole packets out.

Order of checks for each packet, each made as soon as its bytes are there, so the outcome is
the same however the stream is chunked:

1. the first byte: a known packet type for the protocol version (CONNECT first while the
   version is unknown), fixed-header flags as the spec fixes them (2.1.3);
2. the remaining length: a minimal variable byte integer of at most 4 bytes;
3. the maximum packet size, against the length announced in the header, before any of the
   body is waited for: a header announcing 256 MB is refused at once, nothing is allocated;
4. the body, once complete, by the packet type's decoder (see `_decode`).

It never touches a socket or a clock. After it raises, the stream is broken (there is no
resynchronising MQTT); every later call raises the same error, and the caller closes the
connection. Sequencing (CONNECT once and first, which side may send what) is the connection
handler's concern: the decoder accepts any packet type in either direction.
"""

from __future__ import annotations

from ._decode import DECODERS, decode_plain_publish
from .errors import MalformedPacket, MqttError, PacketTooLarge, ProtocolError
from .kinds import PacketType, ProtocolVersion
from .packets import Connect, Packet

DEFAULT_MAX_PACKET_SIZE = 1024 * 1024
MAX_PACKET_SIZE_LIMIT = 268_435_460  # 1 + 4 length bytes + the largest remaining length

# Fixed-header flags (spec 2.1.3); PUBLISH flags carry DUP, QoS and RETAIN instead.
_REQUIRED_FLAGS: dict[int, int] = {t: 0 for t in PacketType if t is not PacketType.PUBLISH}
_REQUIRED_FLAGS.update({PacketType.PUBREL: 2, PacketType.SUBSCRIBE: 2, PacketType.UNSUBSCRIBE: 2})
_PUBLISH = int(PacketType.PUBLISH)


class Decoder:
    """Decodes one direction of one connection.

    `version` is the protocol version if known (a client knows it); a server leaves it None
    and the decoder adopts the level of the CONNECT it decodes. `max_packet_size` counts the
    whole packet, fixed header included (MQTT 5.0 section 3.1.2.11.4)."""

    __slots__ = ("_buffer", "_error", "_max_packet_size", "_pos", "_version")

    def __init__(self, version: ProtocolVersion | None = None, *,
                 max_packet_size: int = DEFAULT_MAX_PACKET_SIZE) -> None:
        if not 2 <= max_packet_size <= MAX_PACKET_SIZE_LIMIT:
            raise ValueError(f"max_packet_size must be 2..{MAX_PACKET_SIZE_LIMIT}")
        self._version = version
        self._max_packet_size = max_packet_size
        self._buffer = bytearray()
        self._pos = 0
        self._error: MqttError | None = None

    @property
    def version(self) -> ProtocolVersion | None:
        return self._version

    @property
    def max_packet_size(self) -> int:
        return self._max_packet_size

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a decoded packet."""
        return len(self._buffer) - self._pos

    def receive(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes read from the connection."""
        if self._error is not None:
            raise self._error
        if self._pos:
            del self._buffer[: self._pos]
            self._pos = 0
        self._buffer += data

    def next_packet(self) -> Packet | None:
        """The next complete packet, or None until more bytes are received."""
        if self._error is not None:
            raise self._error
        try:
            return self._next_packet()
        except MqttError as e:
            self._error = e
            raise

    def feed(self, data: bytes | bytearray | memoryview) -> list[Packet]:
        """Receive bytes and return every packet they complete.

        Raises on the first violation; packets decoded earlier in the same call are then
        dropped (none of them was acknowledged, and the connection is closing anyway). Use
        `receive` and `next_packet` to act on the packets before a violation."""
        self.receive(data)
        packets = []
        while (packet := self.next_packet()) is not None:
            packets.append(packet)
        return packets

    def _check_first_byte(self, first: int) -> None:
        kind, flags = first >> 4, first & 0x0F
        if kind == 0 or (kind == PacketType.AUTH and self._version is ProtocolVersion.V311):
            raise MalformedPacket(f"reserved packet type {kind}")
        if self._version is None and kind != PacketType.CONNECT:
            raise ProtocolError(f"{PacketType(kind).name} before CONNECT")
        required = _REQUIRED_FLAGS.get(kind)
        if required is not None and flags != required:
            raise MalformedPacket(f"{PacketType(kind).name} with fixed-header flags {flags:#x}")

    def _next_packet(self) -> Packet | None:
        buffer, pos = self._buffer, self._pos
        end = len(buffer)
        if pos >= end:
            return None
        first = buffer[pos]
        version = self._version
        if first >> 4 != _PUBLISH or version is None:
            self._check_first_byte(first)  # a PUBLISH after CONNECT passes it whatever it is
        framed = _remaining_length(buffer, pos + 1, end)
        if framed is None:
            return None
        header, length = framed
        total = header + length
        if total > self._max_packet_size:
            raise PacketTooLarge(f"packet of {total} bytes exceeds {self._max_packet_size}")
        if end - pos < total:
            return None
        self._pos = pos + total
        if first >> 4 == _PUBLISH and version is not None:
            plain = decode_plain_publish(first, buffer, pos + header, pos + total, version)
            if plain is not None:
                return plain
        body = bytes(buffer[pos + header : pos + total])
        if version is None:
            version = ProtocolVersion.V5  # only CONNECT gets here; it carries its own level
        packet = DECODERS[first >> 4](first, body, version)
        if isinstance(packet, Connect):
            self._version = packet.protocol_version
        return packet


def _remaining_length(buffer: bytearray, at: int, end: int) -> tuple[int, int] | None:
    """(fixed header size, remaining length) of the packet whose length starts at `at`;
    None until its bytes are there."""
    length = 0
    for i in range(4):
        if at + i >= end:
            return None
        byte = buffer[at + i]
        length |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i:
                raise MalformedPacket("remaining length is not minimally encoded")
            return 2 + i, length
    raise MalformedPacket("remaining length is longer than 4 bytes")


def decode(data: bytes, version: ProtocolVersion | None = None, *,
           max_packet_size: int = MAX_PACKET_SIZE_LIMIT) -> Packet:
    """Decode exactly one complete packet (a truncated or trailing byte is malformed)."""
    decoder = Decoder(version, max_packet_size=max_packet_size)
    decoder.receive(data)
    packet = decoder.next_packet()
    if packet is None or decoder.buffered:
        raise MalformedPacket("not exactly one complete packet")
    return packet

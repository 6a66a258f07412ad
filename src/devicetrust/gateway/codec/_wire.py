"""The MQTT data representations (spec 1.5): integers, variable byte integers, UTF-8 strings,
binary data; a bounds-checked reader over one packet body and the matching writers.

The reader never reads past the body it was given: every overrun is a `MalformedPacket`, so
a length field can never make it read another packet's bytes or allocate more than the body.
"""

from __future__ import annotations

import struct

from .errors import MalformedPacket

MAX_VARINT = 268_435_455  # 0xFF 0xFF 0xFF 0x7F, the largest 4-byte variable byte integer

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


def check_utf8(raw: bytes, what: str) -> str:
    """Decode an MQTT UTF-8 string (spec 1.5.4): well-formed UTF-8 (no surrogates, no
    overlong forms: Python's strict codec refuses both) and no U+0000."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedPacket(f"{what} is not well-formed UTF-8") from e
    if "\x00" in text:
        raise MalformedPacket(f"{what} contains U+0000")
    return text


class Reader:
    """Reads the fields of one packet body, front to back."""

    __slots__ = ("_data", "_end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self._data = data
        self.pos = pos
        self._end = len(data) if end is None else end

    @property
    def remaining(self) -> int:
        return self._end - self.pos

    def _take(self, n: int, what: str) -> bytes:
        start = self.pos
        stop = start + n
        if stop > self._end:
            raise MalformedPacket(f"{what} runs past the end of the packet")
        self.pos = stop
        return self._data[start:stop]

    def u8(self, what: str) -> int:
        if self.pos >= self._end:
            raise MalformedPacket(f"{what} runs past the end of the packet")
        value = self._data[self.pos]
        self.pos += 1
        return value

    def u16(self, what: str) -> int:
        pos = self.pos
        if pos + 2 > self._end:
            raise MalformedPacket(f"{what} runs past the end of the packet")
        self.pos = pos + 2
        data = self._data
        return (data[pos] << 8) | data[pos + 1]

    def u32(self, what: str) -> int:
        value: int = _U32.unpack(self._take(4, what))[0]
        return value

    def varint(self, what: str) -> int:
        value, self.pos = decode_varint(self._data, self.pos, self._end, what)
        return value

    def binary(self, what: str) -> bytes:
        return self._take(self.u16(what), what)

    def utf8(self, what: str) -> str:
        return check_utf8(self._take(self.u16(what), what), what)

    def rest(self) -> bytes:
        data = self._data[self.pos : self._end]
        self.pos = self._end
        return data

    def sub(self, length: int, what: str) -> Reader:
        """A reader over the next `length` bytes (e.g. a property block); skips them here."""
        if self.pos + length > self._end:
            raise MalformedPacket(f"{what} runs past the end of the packet")
        sub = Reader(self._data, self.pos, self.pos + length)
        self.pos += length
        return sub

    def expect_end(self, what: str) -> None:
        if self.pos != self._end:
            raise MalformedPacket(f"{self._end - self.pos} unexpected bytes after the {what}")


def decode_varint(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    """Decode a variable byte integer (spec 1.5.5) at `pos`; returns (value, next position).

    At most 4 bytes; the encoding must be minimal ([MQTT-1.5.5-1]), so there is exactly one
    byte sequence per value. Raises `MalformedPacket` if truncated at `end`."""
    value = 0
    for i in range(4):
        if pos + i >= end:
            raise MalformedPacket(f"{what} runs past the end of the packet")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise MalformedPacket(f"{what} is not minimally encoded")
            return value, pos + i + 1
    raise MalformedPacket(f"{what} is longer than 4 bytes")


def encode_varint(value: int) -> bytes:
    if not 0 <= value <= MAX_VARINT:
        raise ValueError(f"variable byte integer out of range: {value}")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def u16(value: int) -> bytes:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"two byte integer out of range: {value}")
    return _U16.pack(value)


def u32(value: int) -> bytes:
    if not 0 <= value <= 0xFFFF_FFFF:
        raise ValueError(f"four byte integer out of range: {value}")
    return _U32.pack(value)


def binary(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError(f"binary data of {len(data)} bytes exceeds 65535")
    return _U16.pack(len(data)) + data


def utf8(text: str) -> bytes:
    if "\x00" in text:
        raise ValueError("MQTT strings cannot contain U+0000")
    raw = text.encode("utf-8")  # refuses lone surrogates (UnicodeEncodeError, a ValueError)
    if len(raw) > 0xFFFF:
        raise ValueError(f"string of {len(raw)} bytes exceeds 65535")
    return _U16.pack(len(raw)) + raw

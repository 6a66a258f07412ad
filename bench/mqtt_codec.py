"""Benchmark: MQTT codec packets/s for PUBLISH QoS 1 with a 200-byte payload (3.1.1 and 5),
decode and encode, next to baselines measured in the same run:

- struct-only minimal framing: the least a Python decoder can do (split the stream on the
  remaining length, slice topic, packet id and payload; no validation, no objects);
- paho-mqtt's own code: encoding through `Client._send_publish` (its packet building, with
  the socket write intercepted), decoding through `paho.mqtt._packet.decode_publish` on the
  body (framing excluded: paho frames while reading the socket).

    python bench/mqtt_codec.py                # default sizes
    python bench/mqtt_codec.py --n 50000 --json

The codec decodes from a stream fed in 64 KiB chunks (as the gateway reads a socket), with
full validation (UTF-8, topic, flags, properties) and a frozen dataclass per packet.
"""

from __future__ import annotations

import argparse
import json
import struct
import time
from collections.abc import Callable
from typing import Any

from devicetrust.gateway.codec import Decoder, ProtocolVersion, Publish, QoS, encode

TOPIC = "devices/c2c38155-b0d2-48b6-82fd-22fe3b316224/telemetry"
PAYLOAD = bytes(range(200))
CHUNK = 64 * 1024


def rate(n: int, fn: Callable[[], object]) -> float:
    """Items per second of `fn`, which processes n items; best of 3 runs."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def chunks(stream: bytes) -> list[bytes]:
    return [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)]


def codec_packets(n: int) -> list[Publish]:
    return [Publish(TOPIC, PAYLOAD, QoS.AT_LEAST_ONCE, packet_id=i % 65535 + 1)
            for i in range(n)]


def codec_decode(parts: list[bytes], version: ProtocolVersion, n: int) -> None:
    decoder = Decoder(version)
    count = 0
    for part in parts:
        count += len(decoder.feed(part))
    assert count == n


def struct_encode(n: int, v5: bool) -> list[bytes]:
    topic = TOPIC.encode()
    out = []
    for i in range(n):
        body = (struct.pack(">H", len(topic)) + topic + struct.pack(">H", i % 65535 + 1)
                + (b"\x00" if v5 else b"") + PAYLOAD)
        length = len(body)
        header = bytearray(b"\x32")
        while True:
            byte, length = length & 0x7F, length >> 7
            header.append(byte | 0x80 if length else byte)
            if not length:
                break
        out.append(bytes(header) + body)
    return out


def struct_decode(parts: list[bytes], v5: bool, n: int) -> None:
    buffer = bytearray()
    count = 0
    for part in parts:
        buffer += part
        pos = 0
        while True:
            if len(buffer) - pos < 2:
                break
            length, shift, i = 0, 0, pos + 1
            while True:
                if i >= len(buffer):
                    length = -1
                    break
                byte = buffer[i]
                length |= (byte & 0x7F) << shift
                shift += 7
                i += 1
                if not byte & 0x80:
                    break
            if length < 0 or len(buffer) - i < length:
                break
            (topic_len,) = struct.unpack_from(">H", buffer, i)
            _topic = bytes(buffer[i + 2 : i + 2 + topic_len])
            (_pid,) = struct.unpack_from(">H", buffer, i + 2 + topic_len)
            start = i + 4 + topic_len + (1 if v5 else 0)
            _payload = bytes(buffer[start : i + length])
            pos = i + length
            count += 1
        del buffer[:pos]
    assert count == n


def paho_encoder(version: ProtocolVersion) -> tuple[Callable[[int], None], list[bytes]]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    protocol = mqtt.MQTTv5 if version is ProtocolVersion.V5 else mqtt.MQTTv311
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench", protocol=protocol)
    sent: list[bytes] = []
    class _NoSocket:  # paho only checks that a socket is there; nothing is written
        def close(self) -> None:
            pass

    client._sock = _NoSocket()  # type: ignore[assignment]
    client._packet_queue = (  # type: ignore[method-assign]
        lambda _cmd, packet, *_a, **_k: sent.append(packet))
    topic = TOPIC.encode()

    def run(n: int) -> None:
        sent.clear()
        for i in range(n):
            client._send_publish(i % 65535 + 1, topic, PAYLOAD, 1)

    return run, sent


def paho_decode_bodies(bodies: list[tuple[int, bytes]], version: ProtocolVersion) -> None:
    from paho.mqtt import _packet

    protocol = 5 if version is ProtocolVersion.V5 else 4
    for header, body in bodies:
        _packet.decode_publish(header, body, protocol)  # type: ignore[arg-type]


def measure(n: int, version: ProtocolVersion) -> dict[str, Any]:
    v5 = version is ProtocolVersion.V5
    packets = codec_packets(n)
    stream = b"".join(encode(p, version) for p in packets)
    parts = chunks(stream)
    first = encode(packets[0], version)
    header_len = next(h for h in range(2, 6) if first[h - 1] < 0x80)  # end of the varint
    bodies = [(0x32, encode(p, version)[header_len:]) for p in packets]
    paho_run, paho_sent = paho_encoder(version)
    paho_run(1)
    assert paho_sent[0] == encode(packets[0], version)  # same bytes as the codec writes
    return {
        "version": version.name,
        "packet_bytes": len(encode(packets[0], version)),
        "codec_encode": rate(n, lambda: [encode(p, version) for p in packets]),
        "codec_decode": rate(n, lambda: codec_decode(parts, version, n)),
        "struct_encode": rate(n, lambda: struct_encode(n, v5)),
        "struct_decode": rate(n, lambda: struct_decode(parts, v5, n)),
        "paho_encode": rate(n, lambda: paho_run(n)),
        "paho_decode_body": rate(n, lambda: paho_decode_bodies(bodies, version)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="packets per measurement")
    parser.add_argument("--json", action="store_true", help="print machine-readable figures")
    args = parser.parse_args()
    results = [measure(args.n, v) for v in (ProtocolVersion.V311, ProtocolVersion.V5)]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"PUBLISH QoS 1, {len(PAYLOAD)}-byte payload, {args.n} packets, best of 3 (packets/s)")
    print(f"{'':8}{'codec':>12}{'struct-only':>14}{'paho':>12}")
    for r in results:
        label = f"{r['version']} ({r['packet_bytes']} B)"
        print(label)
        print(f"{'  encode':8}{r['codec_encode']:>12,.0f}{r['struct_encode']:>14,.0f}"
              f"{r['paho_encode']:>12,.0f}")
        print(f"{'  decode':8}{r['codec_decode']:>12,.0f}{r['struct_decode']:>14,.0f}"
              f"{r['paho_decode_body']:>12,.0f}  (paho: body only, no framing)")


if __name__ == "__main__":
    main()

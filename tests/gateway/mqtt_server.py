"""A tiny MQTT server for interoperability tests that speaks only through the codec.

It answers CONNECT, SUBSCRIBE, UNSUBSCRIBE, PUBLISH (QoS 0/1), PINGREQ and DISCONNECT, routes
publications to matching subscribers (encoded for each subscriber's protocol version), and
records every packet it decoded, so a test can assert that what a client we did not write
sent is exactly what the codec read. It listens on a free 127.0.0.1 port, in its own event
loop thread, and is stopped by the test (context manager).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TypeVar

from devicetrust.gateway.codec import (
    Connack,
    Connect,
    Decoder,
    Disconnect,
    MqttError,
    Packet,
    Pingreq,
    Pingresp,
    Properties,
    ProtocolVersion,
    Puback,
    Publish,
    QoS,
    ReasonCode,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
    encode,
    matches,
)

P = TypeVar("P", bound=Packet)


@dataclass
class _Client:
    writer: asyncio.StreamWriter
    version: ProtocolVersion = ProtocolVersion.V311
    client_id: str = ""
    filters: dict[str, QoS] = field(default_factory=dict)


class CodecServer:
    def __init__(self) -> None:
        self.received: list[tuple[str, Packet]] = []  # (client id, packet), in arrival order
        self.errors: list[MqttError] = []
        self._changed = threading.Condition()
        self._clients: list[_Client] = []
        self._ids = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self.port = 0

    def __enter__(self) -> CodecServer:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for client in list(self._clients):
                client.writer.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def wait_for(self, predicate: Callable[[list[tuple[str, Packet]]], bool],
                 timeout: float = 20) -> list[tuple[str, Packet]]:
        """Block until `predicate(received)` holds; fail the test after `timeout` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.received), timeout):
                raise AssertionError(f"condition not met; received: {self.received!r}")
            return list(self.received)

    def packets_from(self, client_id: str, kind: type[P]) -> list[P]:
        with self._changed:
            return [p for c, p in self.received if c == client_id and isinstance(p, kind)]

    def _record(self, client: _Client, packet: Packet) -> None:
        with self._changed:
            self.received.append((client.client_id, packet))
            self._changed.notify_all()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = _Client(writer)
        self._clients.append(client)
        decoder = Decoder(max_packet_size=64 * 1024)
        try:
            while data := await reader.read(65536):
                for packet in decoder.feed(data):
                    if isinstance(packet, Connect):
                        client.version, client.client_id = packet.protocol_version, packet.client_id
                    self._record(client, packet)
                    if not self._answer(client, packet):
                        return
                await writer.drain()
        except MqttError as e:
            with self._changed:
                self.errors.append(e)
                self._changed.notify_all()
            if decoder.version is ProtocolVersion.V5:
                writer.write(encode(Disconnect(e.reason_code), ProtocolVersion.V5))
        except ConnectionError:
            pass
        finally:
            self._clients.remove(client)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _answer(self, client: _Client, packet: Packet) -> bool:
        """Reply to one packet; False when the connection is to be closed."""
        send = client.writer.write
        version = client.version
        if isinstance(packet, Connect):
            # MQTT 5: tell the client QoS 2 is not served (the gateway's policy too).
            send(encode(Connack(properties=Properties(maximum_qos=1)), version))
        elif isinstance(packet, Subscribe):
            for s in packet.subscriptions:
                client.filters[s.topic_filter] = min(s.qos, QoS.AT_LEAST_ONCE)
            granted = tuple(ReasonCode(min(s.qos, 1)) for s in packet.subscriptions)
            send(encode(Suback(packet.packet_id, granted), version))
        elif isinstance(packet, Unsubscribe):
            for f in packet.topic_filters:
                client.filters.pop(f, None)
            codes = tuple(ReasonCode.SUCCESS for _ in packet.topic_filters)
            send(encode(Unsuback(packet.packet_id, codes), version))
        elif isinstance(packet, Publish):
            if packet.qos is QoS.EXACTLY_ONCE:  # refused cleanly (MQTT 5.0 section 3.2.2.3.4)
                if version is ProtocolVersion.V5:
                    send(encode(Disconnect(ReasonCode.QOS_NOT_SUPPORTED), version))
                return False
            if packet.qos is QoS.AT_LEAST_ONCE:
                assert packet.packet_id is not None
                send(encode(Puback(packet.packet_id), version))
            self._route(packet)
        elif isinstance(packet, Pingreq):
            send(encode(Pingresp(), version))
        elif isinstance(packet, Disconnect):
            return False
        return True

    def _route(self, message: Publish) -> None:
        for other in self._clients:
            granted = [q for f, q in other.filters.items() if matches(f, message.topic)]
            if not granted:
                continue
            qos = QoS(min(max(granted), message.qos, QoS.AT_LEAST_ONCE))
            packet_id = next(self._ids) % 0xFFFF + 1 if qos else None
            out = Publish(message.topic, message.payload, qos, packet_id=packet_id,
                          properties=message.properties)
            other.writer.write(encode(out, other.version))

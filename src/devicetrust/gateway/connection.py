"""One device connection: the MQTT state machine on top of the sans-I/O codec.

States, in order, each leaving only forward or to closed:

1. **handshaken**: TLS 1.3 done; a CONNECT must arrive within `connect_timeout` (slowloris),
   and it must be the first packet (the decoder refuses anything else);
2. **connecting** (`connecting`): the checks of `rules` and the credential (`credentials`),
   in the order written there; any refusal is a CONNACK with its reason code (3.1.1: return
   code), then close. Only here is a session attached, and only for the proven physical id;
3. **connected**: PUBLISH to the device's own diagnostics/telemetry topic is stored, and
   QoS 1 acknowledged only once stored (or refused by the store, `publish_outcome`);
   SUBSCRIBE only to its own feedback topic; keep alive enforced at 1.5x; the session
   closes when the credential expires;
4. **closed**: by the device (DISCONNECT: will discarded unless 0x04), by an error (will
   stored), by a takeover (0x8E, will stored), a kick (0x87/0x98, will not stored), credential
   expiry (0xA0, will not stored) or shutdown (0x8B).

Never acknowledges a message before the sink stored it, never lets one device publish or
subscribe outside its own topics, and never lets a device choose its identity.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl

from devicetrust.domain.ids import LogicalName

from . import rules
from .codec import (
    Connack,
    Connect,
    Decoder,
    Disconnect,
    MqttError,
    Packet,
    Pingreq,
    Pingresp,
    ProtocolVersion,
    Puback,
    Publish,
    ReasonCode,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
    UnsupportedProtocolVersion,
    Will,
    encode,
)
from .connecting import open_session
from .environment import Environment
from .feedback import FeedbackChannel
from .inbound import Inbound

READ_SIZE = 65536
V5 = ProtocolVersion.V5


class Connection:
    def __init__(self, env: Environment, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self._env = env
        self._reader = reader
        self._writer = writer
        self._decoder = Decoder(max_packet_size=env.config.max_packet_size)
        self._version = ProtocolVersion.V311
        self._inbound: Inbound | None = None  # once connected: its PUBLISHes
        self._feedback: FeedbackChannel | None = None
        self._terms: rules.Terms | None = None
        self._will: Will | None = None
        self._closing = False
        self._expiry: asyncio.TimerHandle | None = None
        self._out = bytearray()  # written at the end of this turn of the event loop
        self._task: asyncio.Task[None] | None = None

    # ---- the task -----------------------------------------------------------------------

    async def run(self) -> None:
        self._task = asyncio.current_task()
        try:
            connect = await self._receive_connect()
            if connect is not None and await self._open(connect):
                await self._serve()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass  # the peer went away: an abnormal end, the will is stored below
        except asyncio.CancelledError:
            if not self._closing:
                raise  # cancelled from outside (shutdown), not by our own disconnect
        finally:
            self._finish()
            self._flush()
            self._writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
                async with asyncio.timeout(5):
                    await self._writer.wait_closed()

    @property
    def closing(self) -> bool:
        return self._closing

    async def _read(self) -> bool:
        data = await self._reader.read(READ_SIZE)
        if not data:
            return False
        self._decoder.receive(data)
        if self._inbound is not None:  # the messages of these bytes arrived now
            self._inbound.received_at = self._env.clock.now()
        return True

    async def _receive_connect(self) -> Connect | None:
        env = self._env
        try:
            async with asyncio.timeout(env.config.connect_timeout):
                while True:
                    packet = self._decoder.next_packet()
                    if packet is not None:
                        assert isinstance(packet, Connect)  # the decoder refuses all else
                        return packet
                    if not await self._read():
                        return None
        except TimeoutError:
            env.counters.connect_timeouts += 1
        except UnsupportedProtocolVersion as e:
            self._refuse(e.reason_code)  # answered in 3.1.1 form: return code 1
        except MqttError as e:
            env.counters.refuse(e.reason_code)  # no version known to answer in: close
        return None

    # ---- connecting -----------------------------------------------------------------------

    def _refuse(self, reason: ReasonCode) -> bool:
        self._env.counters.refuse(reason)
        self._write(Connack(reason_code=reason))
        self._flush()
        return False

    async def _open(self, connect: Connect) -> bool:
        env = self._env
        self._version = connect.protocol_version
        opened = await open_session(env, connect, self._writer, self, self._send)
        if isinstance(opened, ReasonCode):
            return self._refuse(opened)
        if opened is None:
            return False
        device = opened.device
        self._inbound = Inbound(env, device, self._version, connection=self, send=self._send)
        self._terms, self._feedback, self._will = opened.terms, opened.feedback, connect.will
        delay = (device.expires_at - env.clock.now()).total_seconds()
        self._expiry = asyncio.get_running_loop().call_later(max(delay, 0.0), self._expired)
        env.hooks.connected(device)
        opened.feedback.resume()
        return True

    # ---- connected --------------------------------------------------------------------------

    async def _serve(self) -> None:
        assert self._terms is not None and self._inbound is not None
        idle = self._terms.keep_alive * 1.5
        store, room = self._env.store, self._inbound.room
        while not self._closing:
            try:
                packet = self._decoder.next_packet()
            except MqttError as e:
                self._env.counters.refuse(e.reason_code)
                self.disconnect(e.reason_code, store_will=True)
                return
            if packet is not None:
                if not self._handle(packet):
                    return
                continue
            await self._writer.drain()
            # Over Receive Maximum, stop reading until the store catches up, rather than
            # DISCONNECT 0x93: 3.1.1 clients cannot be told the limit and paho-mqtt (5)
            # ignores it; TCP flow control then slows the device down.
            await room.wait()
            await store.room()
            try:
                async with asyncio.timeout(idle):
                    if not await self._read():
                        return
            except TimeoutError:
                self._env.counters.keep_alive_timeouts += 1
                self.disconnect(ReasonCode.KEEP_ALIVE_TIMEOUT, store_will=True)
                return

    def _handle(self, packet: Packet) -> bool:
        """Answer one packet; False once the connection is to close."""
        if isinstance(packet, Publish):
            assert self._inbound is not None
            return self._inbound.publish(packet)
        if isinstance(packet, Puback):
            return self._on_puback(packet)
        if isinstance(packet, Pingreq):
            self._write(Pingresp())
            return True
        if isinstance(packet, Subscribe):
            return self._on_subscribe(packet)
        if isinstance(packet, Unsubscribe):
            return self._on_unsubscribe(packet)
        if isinstance(packet, Disconnect):
            return self._on_disconnect(packet)
        # A second CONNECT, QoS 2 flow packets (never started: QoS 2 is refused), AUTH
        # (no enhanced authentication) or a packet only a server sends.
        return self._protocol_close(ReasonCode.PROTOCOL_ERROR)

    def _protocol_close(self, reason: ReasonCode) -> bool:
        self._env.counters.refuse(reason)
        self.disconnect(reason, store_will=True)
        return False

    def _on_subscribe(self, p: Subscribe) -> bool:
        inbound, feedback = self._inbound, self._feedback
        assert inbound is not None and feedback is not None
        device = inbound.device
        if p.properties.subscription_identifiers:
            return self._protocol_close(ReasonCode.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED)
        codes = []
        for s in p.subscriptions:
            if self._env.layout.may_subscribe(device.physical_id, s.topic_filter):
                codes.append(ReasonCode(feedback.subscribe(s.qos)))
            else:
                self._env.counters.refuse(ReasonCode.NOT_AUTHORIZED)
                self._env.hooks.refused(device.physical_id, ReasonCode.NOT_AUTHORIZED,
                                        f"subscribe to {s.topic_filter[:128]!r}")
                codes.append(ReasonCode.NOT_AUTHORIZED)
        self._write(Suback(p.packet_id, tuple(codes)))
        self._env.sessions.changed(feedback.session, connected=True)
        feedback.pump()
        return True

    def _on_unsubscribe(self, p: Unsubscribe) -> bool:
        inbound, feedback = self._inbound, self._feedback
        assert inbound is not None and feedback is not None
        device = inbound.device
        codes = [ReasonCode.SUCCESS
                 if self._env.layout.may_subscribe(device.physical_id, f) and feedback.unsubscribe()
                 else ReasonCode.NO_SUBSCRIPTION_EXISTED for f in p.topic_filters]
        self._write(Unsuback(p.packet_id, tuple(codes)))
        self._env.sessions.changed(feedback.session, connected=True)
        return True

    def _on_puback(self, p: Puback) -> bool:
        assert self._feedback is not None
        self._feedback.acked(p.packet_id)
        return True

    def _on_disconnect(self, p: Disconnect) -> bool:
        assert self._feedback is not None
        session = self._feedback.session
        expiry = p.properties.session_expiry_interval
        if expiry is not None:
            if session.expiry == 0 and expiry > 0:  # MQTT 5.0 section 3.14.2.2.2
                return self._protocol_close(ReasonCode.PROTOCOL_ERROR)
            session.expiry = min(expiry, self._env.config.max_session_expiry)
        self.disconnect(ReasonCode.NORMAL_DISCONNECTION,
                        store_will=p.reason_code is ReasonCode.DISCONNECT_WITH_WILL_MESSAGE)
        return False

    def pump_feedback(self) -> None:
        if not self._closing and self._feedback is not None:
            self._feedback.pump()

    # ---- closing ----------------------------------------------------------------------------

    def set_logical_name(self, logical_name: LogicalName | None) -> None:
        """The unit's logical identity changed (rename): stamp its next messages so."""
        if self._inbound is not None:
            self._inbound.set_device(
                dataclasses.replace(self._inbound.device, logical_name=logical_name))

    def _expired(self) -> None:
        self._env.counters.credential_expiries += 1
        self.disconnect(ReasonCode.MAXIMUM_CONNECT_TIME, store_will=False)

    def disconnect(self, reason: ReasonCode, *, store_will: bool) -> None:
        if self._closing:
            return
        self._closing = True
        if store_will:
            self._store_will()
        self._will = None
        if self._expiry is not None:
            self._expiry.cancel()
        if self._version is V5 and self._inbound is not None:
            self._write(Disconnect(reason))
        self._flush()
        self._writer.close()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()  # wake the reader now; `run` treats it as our own close

    def _store_will(self) -> None:
        if self._will is not None and self._inbound is not None:
            self._inbound.store_will(self._will)

    def _finish(self) -> None:
        """The end of the connection, however it came."""
        env = self._env
        if not self._closing:
            self._closing = True
            self._store_will()  # the network connection ended without DISCONNECT
        if self._expiry is not None:
            self._expiry.cancel()
        env.counters.connections_closed += 1
        if self._inbound is not None:
            physical_id = self._inbound.device.physical_id
            env.sessions.detach(physical_id, self)
            env.hooks.disconnected(physical_id)

    def _write(self, packet: Packet) -> None:
        self._send(encode(packet, self._version))

    def _send(self, data: bytes) -> None:
        """Queue bytes for the peer; everything queued in one turn of the loop leaves in one
        TLS write (a burst of PUBACKs is one record, not one each)."""
        if self._writer.is_closing():
            return
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out += data

    def _flush(self) -> None:
        if self._out and not self._writer.is_closing():
            self._writer.write(bytes(self._out))
        self._out.clear()

"""`IngestWorker`: the backend client of a Mosquitto data plane.

Subscribes to every device's diagnostics and telemetry through a shared subscription
(`$share/ingest/...`: several workers split the load, each message goes to one of them),
stores what arrives in batches (`MessageStore.store_batch`, one transaction per batch) and
acknowledges each QoS 1 message to the broker only after the batch committed (paho's
manual acknowledgments). A worker that dies before acknowledging gets the messages again
when it reconnects with the same client id (persistent session); the store's unique key
turns that redelivery into a duplicate, so every message is stored exactly once. A message
the store refuses (an unknown content type, a malformed payload, a schema violation, ...) is
acknowledged all the same, so the broker does not redeliver it forever, and counted by
reason (`stats.refusals`). The payload's encoding is its MQTT 5 Content Type.
An acknowledgment is never sent on a newer connection than the message came in on (packet
ids are per connection): such a message is simply redelivered.

Besides: publishes queued feedback to the holder's `<prefix>/<physical id>/feedback`
(QoS 1; marked published on the broker's PUBACK), an acknowledgment of each diagnostics
report (QoS 0, `{"ack": <key>, "status": ...}`), and runs the `RevocationFollower` when
given one.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy.exc import OperationalError

from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import DeviceTrustError, InvalidInput
from devicetrust.domain.ids import PhysicalId, parse_physical_id
from devicetrust.ingest.broker_files import SHARE_GROUP
from devicetrust.ingest.connection import BrokerConnection
from devicetrust.ingest.dynsec import RESPONSE_TOPIC, DynsecControl
from devicetrust.ingest.feedback import FeedbackQueue
from devicetrust.ingest.records import InboundMessage, MessageKind, Outcome
from devicetrust.ingest.revocations import RevocationFollower
from devicetrust.ingest.store import MessageStore

_log = logging.getLogger(__name__)
_STREAMS = {k.value: k for k in MessageKind}
FEEDBACK_RETRY_SECONDS = 5.0


@dataclass
class IngestStats:
    stored: int = 0
    duplicates: int = 0
    refused: int = 0
    feedback_published: int = 0
    refusals: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Received:
    message: mqtt.MQTTMessage
    generation: int
    at: Any


class IngestWorker:
    def __init__(
        self,
        store: MessageStore,
        feedback: FeedbackQueue,
        connection: BrokerConnection,
        clock: Clock,
        *,
        topic_prefix: str = "devices",
        batch_size: int = 500,
        ack_diagnostics: bool = True,
        housekeeping_seconds: float = 0.2,
        follower_factory: Callable[[DynsecControl], RevocationFollower] | None = None,
    ) -> None:
        self._store = store
        self._feedback = feedback
        self._conn = connection
        self._clock = clock
        self._prefix = topic_prefix
        self._batch = batch_size
        self._ack_diagnostics = ack_diagnostics
        self._interval = housekeeping_seconds
        self.stats = IngestStats()
        self._inbox: queue.Queue[_Received] = queue.Queue()
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._generation = 0
        self._gen_lock = threading.Lock()
        # Feedback published and not yet acknowledged (touched by the housekeeping thread
        # only; the network thread hands PUBACKs over through `_acked`).
        self._in_flight: dict[int, tuple[str, PhysicalId]] = {}
        self._acked: queue.Queue[tuple[int, int]] = queue.Queue()
        self._retry_at: dict[str, float] = {}
        self._client = connection.client(manual_ack=True)
        self.control = DynsecControl(self._publish_control)
        self._follower = follower_factory(self.control) if follower_factory else None
        self._threads: list[threading.Thread] = []
        self._failure: BaseException | None = None
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish

    # ---- life cycle ----------------------------------------------------------------------

    def start(self, *, timeout: float = 15.0) -> None:
        self._client.connect(
            self._conn.host,
            self._conn.port,
            keepalive=self._conn.keepalive,
            clean_start=False,
            properties=self._conn.connect_properties(),
        )
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise TimeoutError(f"no subscription at {self._conn.host}:{self._conn.port}")
        for target in (self._store_loop, self._housekeeping_loop):
            thread = threading.Thread(
                target=self._guarded, args=(target,), daemon=True, name=target.__name__
            )
            thread.start()
            self._threads.append(thread)

    @property
    def failure(self) -> BaseException | None:
        """The error that stopped a worker thread (the worker then stops: restart it)."""
        return self._failure

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker stops (by `stop()` or a failure); True if it did."""
        return self._stop.wait(timeout)

    def _guarded(self, target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:
            # An unexpected fault is not carried on from: it stops the worker, loudly, and
            # leaves the unacknowledged messages to the broker for the next start.
            _log.exception("ingest worker thread %s failed", target.__name__)
            self._failure = exc
            self._stop.set()
            raise

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._client.disconnect()
        self._client.loop_stop()

    # ---- paho callbacks (network thread) -------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        if rc.is_failure:
            _log.warning("broker refused the ingest connection: %s", rc)
            return
        with self._gen_lock:
            self._generation += 1
        base = f"$share/{SHARE_GROUP}/{self._prefix}/+"
        client.subscribe(
            [(f"{base}/diagnostics", 1), (f"{base}/telemetry", 1), (RESPONSE_TOPIC, 1)]
        )
        self._subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == RESPONSE_TOPIC:
            self.control.on_response(bytes(message.payload))
            self._client.ack(message.mid, message.qos)
            return
        self._inbox.put(_Received(message, self._generation, self._clock.now()))

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        # No database work on the network thread: the housekeeping thread settles it.
        self._acked.put((mid, rc.value))

    # ---- storage ---------------------------------------------------------------------------

    def _store_loop(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < self._batch:
                try:
                    batch.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            self._store_until_done(batch)

    def _store_until_done(self, batch: list[_Received]) -> None:
        inbound: list[InboundMessage | None] = [self._inbound(r) for r in batch]
        valid = [m for m in inbound if m is not None]
        delay = 0.1
        while True:
            try:
                results = iter(self._store.store_batch(valid))
                break
            except (DeviceTrustError, OperationalError) as exc:  # the database is away
                # keep them, unacknowledged, and try again
                _log.warning("batch of %d not stored (%s); retrying", len(valid), _code(exc))
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, 5.0)
        for received, message in zip(batch, inbound, strict=True):
            if message is None:
                self._count_refusal("ingest.bad_topic")
            else:
                result = next(results)
                if result.outcome is Outcome.STORED:
                    self.stats.stored += 1
                elif result.outcome is Outcome.DUPLICATE:
                    self.stats.duplicates += 1
                else:
                    self._count_refusal(result.reason or "ingest.refused")
                if self._ack_diagnostics and message.kind is MessageKind.DIAGNOSTICS:
                    body = {"ack": result.message_key, "status": result.outcome.value}
                    if result.reason:
                        body["reason"] = result.reason
                    topic = f"{self._prefix}/{message.physical_id}/feedback"
                    self._client.publish(topic, json.dumps(body), qos=0)
            if received.generation == self._generation:
                self._client.ack(received.message.mid, received.message.qos)

    def _inbound(self, received: _Received) -> InboundMessage | None:
        message = received.message
        parts = message.topic.split("/")
        prefix = self._prefix.split("/")
        if len(parts) != len(prefix) + 2 or parts[: len(prefix)] != prefix:
            return None
        kind = _STREAMS.get(parts[-1])
        try:
            unit = parse_physical_id(parts[-2])
        except InvalidInput:
            return None
        if kind is None or unit != parts[-2]:
            return None
        return InboundMessage(unit, kind, bytes(message.payload), received.at,
                              _message_id(message), _content_type(message))

    def _count_refusal(self, code: str) -> None:
        self.stats.refused += 1
        self.stats.refusals[code] = self.stats.refusals.get(code, 0) + 1

    # ---- feedback and revocations --------------------------------------------------------

    def _housekeeping_loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._publish_feedback()
                if self._follower is not None:
                    self._follower.run_once()
            except (DeviceTrustError, OperationalError) as exc:  # retried at the next tick
                _log.warning("ingest housekeeping failed: %s", _code(exc))

    def _publish_feedback(self) -> None:
        """Settle broker acknowledgments, then publish what is due. A PUBACK "no matching
        subscribers" (MQTT 5 reason 0x10: the device is offline without a session) leaves
        the feedback pending, retried every `FEEDBACK_RETRY_SECONDS` until its TTL."""
        now = time.monotonic()
        while True:
            try:
                mid, reason = self._acked.get_nowait()
            except queue.Empty:
                break
            sent = self._in_flight.pop(mid, None)  # None: a QoS 0 or control message
            if sent is None:
                continue
            if reason != 0:  # 0x10 no subscribers, or a refusal: try again later
                self._retry_at[sent[0]] = now + FEEDBACK_RETRY_SECONDS
                continue
            self._feedback.mark_published(*sent)
            self.stats.feedback_published += 1
        waiting = {fid for fid, _ in self._in_flight.values()}
        for routed in self._feedback.due(limit=100):
            fid = routed.feedback.feedback_id
            if fid in waiting or self._retry_at.get(fid, 0.0) > now:
                continue
            self._retry_at.pop(fid, None)
            topic = f"{self._prefix}/{routed.physical_id}/feedback"
            info = self._client.publish(topic, json.dumps(routed.feedback.payload), qos=1)
            self._in_flight[info.mid] = (fid, routed.physical_id)

    def _publish_control(self, topic: str, payload: bytes) -> None:
        self._client.publish(topic, payload, qos=1)


def _code(exc: Exception) -> str:
    return exc.code if isinstance(exc, DeviceTrustError) else "store.unavailable"


def _content_type(message: mqtt.MQTTMessage) -> str | None:
    """The MQTT 5 Content Type (the payload's encoding); None for JSON and MQTT 3.1.1."""
    value = getattr(getattr(message, "properties", None), "ContentType", None)
    return str(value) if value is not None else None


def _message_id(message: mqtt.MQTTMessage) -> str | None:
    props = getattr(message, "properties", None)
    for key, value in getattr(props, "UserProperty", None) or ():
        if key == "msg-id":
            return str(value)
    return None

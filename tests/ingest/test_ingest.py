"""`devicetrust ingest` against a real Mosquitto: messages stored under the right identities,
acknowledged after the commit, exactly once; feedback reaches the device; workers share."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import func, select

from devicetrust.domain import FixedClock
from devicetrust.domain.ids import PhysicalId
from devicetrust.ingest import (
    FeedbackQueue,
    FeedbackStatus,
    InboundMessage,
    MessageKind,
    MessageStore,
)
from devicetrust.store.database import Database
from devicetrust.store.models_data_plane import DeviceMessageRow

from .clients import DeviceClient, eventually
from .conftest import Broker, Device, WorkerFactory


def stored_count(db: Database) -> int:
    with db.read() as session:
        return int(session.execute(select(func.count()).select_from(DeviceMessageRow)).scalar_one())


def publish(broker: Broker, device: Device, kind: str, body: str, *extra: str) -> None:
    subprocess.run(
        [
            "mosquitto_pub",
            *broker.cli_args(device),
            "-V",
            "mqttv5",
            "-q",
            "1",
            "-t",
            f"devices/{device.physical_id}/{kind}",
            "-m",
            body,
            *extra,
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )


def test_reports_are_stored_under_the_right_identities_and_acknowledged(
    broker: Broker, workers: WorkerFactory, db: Database, clock: FixedClock
) -> None:
    worker = workers()
    device = broker.device("line-03-left-welding-12")
    # One connection per device (the broker forces the client id to the certificate's CN):
    # the device publishes and hears its acknowledgments on the same session.
    me = DeviceClient(broker.port, broker.cafile, device.cert, device.key, "d").start()
    topic = f"devices/{device.physical_id}"
    try:
        me.subscribe(f"{topic}/feedback")
        me.client.publish(f"{topic}/diagnostics", '{"parts_per_hour": 118}', qos=1)
        for body in ('{"torque": [1.5, 2.0]}', '{"torque": [9]}'):  # same id: a retry
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = ("msg-id", "t-1")
            me.client.publish(
                f"{topic}/telemetry", body, qos=1, properties=props
            ).wait_for_publish()
        me.client.publish(f"{topic}/diagnostics", "not json", qos=1)
        store = MessageStore(db, clock)
        assert eventually(lambda: worker.stats.refused == 1 and worker.stats.duplicates == 1)
        assert eventually(lambda: len(me.received) >= 2)
    finally:
        me.stop()
    [diag] = store.diagnostics_of("line-03-left-welding-12")
    assert (diag.physical_id, diag.logical_name, diag.payload) == (
        device.physical_id,
        "line-03-left-welding-12",
        {"parts_per_hour": 118},
    )
    [tele] = store.telemetry_of(device.physical_id)
    assert (tele.payload, tele.message_key, tele.logical_name) == (
        {"torque": [1.5, 2.0]},
        "t-1",
        "line-03-left-welding-12",
    )
    assert (worker.stats.stored, worker.stats.duplicates) == (2, 1)
    assert worker.stats.refusals == {"ingest.payload_not_json": 1}
    statuses = [json.loads(body)["status"] for _, body in me.received]
    assert statuses == ["stored", "refused"]


def test_operator_feedback_reaches_the_holder(
    broker: Broker, workers: WorkerFactory, db: Database, clock: FixedClock
) -> None:
    workers()
    device = broker.device("robot-1")
    listener = DeviceClient(broker.port, broker.cafile, device.cert, device.key, "d").start()
    try:
        listener.subscribe(f"devices/{device.physical_id}/feedback")
        queue = FeedbackQueue(db, clock)
        sent = queue.send("robot-1", {"resume_at": "10:00"}, actor="operator:test")
        assert eventually(lambda: listener.received)
        assert eventually(lambda: queue.get(sent.feedback_id).status is FeedbackStatus.PUBLISHED)
    finally:
        listener.stop()
    assert listener.received == [
        (f"devices/{device.physical_id}/feedback", b'{"resume_at": "10:00"}')
    ]
    assert queue.get(sent.feedback_id).physical_id == device.physical_id


def test_two_workers_share_the_load_without_duplicates(
    broker: Broker, workers: WorkerFactory, db: Database
) -> None:
    first, second = workers("ingest-a"), workers("ingest-b", follow=False)
    device = broker.device("robot-1")
    lines = "".join(json.dumps({"seq": n}) + "\n" for n in range(300))
    subprocess.run(
        [
            "mosquitto_pub",
            *broker.cli_args(device),
            "-V",
            "mqttv5",
            "-q",
            "1",
            "-t",
            f"devices/{device.physical_id}/telemetry",
            "-l",
        ],
        input=lines.encode(),
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert eventually(lambda: stored_count(db) == 300, timeout=60)
    assert first.stats.stored > 0 and second.stats.stored > 0
    assert first.stats.stored + second.stats.stored == 300
    assert first.stats.duplicates + second.stats.duplicates == 0


def test_a_redelivered_message_is_stored_exactly_once(
    broker: Broker, workers: WorkerFactory, db: Database, clock: FixedClock
) -> None:
    """A worker stores a message and dies before its PUBACK: the broker redelivers it to
    the worker's persistent session, and the store recognises it."""
    device = broker.device("robot-1")
    got = threading.Event()
    received: list[mqtt.MQTTMessage] = []
    context = ssl.create_default_context(cafile=str(broker.cafile))
    context.load_cert_chain(str(broker.files.ingest_cert), str(broker.files.ingest_key))
    crashing = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="ingest-r", protocol=mqtt.MQTTv5, manual_ack=True
    )
    crashing.tls_set_context(context)
    crashing.on_message = lambda _c, _u, m: (received.append(m), got.set())
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 600
    crashing.connect("127.0.0.1", broker.backend_port, clean_start=True, properties=props)
    crashing.loop_start()
    crashing.subscribe("$share/ingest/devices/+/telemetry", qos=1)
    try:
        eventually(crashing.is_connected)
        time.sleep(0.3)  # the SUBACK
        publish(broker, device, "telemetry", '{"torque": [1]}')
        assert got.wait(20)
        [message] = received
        MessageStore(db, clock).store(
            InboundMessage(
                PhysicalId(device.physical_id), MessageKind.TELEMETRY, message.payload, clock.now()
            )
        )
    finally:
        crashing.disconnect()  # no PUBACK was sent
        crashing.loop_stop()
    worker = workers("ingest-r")
    assert eventually(lambda: worker.stats.duplicates == 1)
    assert worker.stats.stored == 0
    assert stored_count(db) == 1


def test_feedback_waits_while_the_device_is_offline(
    broker: Broker, workers: WorkerFactory, db: Database, clock: FixedClock
) -> None:
    """Mosquitto answers "no matching subscribers" (MQTT 5 reason 0x10) while the device is
    away: the feedback stays pending and is delivered once the device listens."""
    workers()
    device = broker.device("robot-1")
    queue = FeedbackQueue(db, clock)
    sent = queue.send("robot-1", {"stop": True}, actor="operator:test")
    time.sleep(1.0)  # published once, answered 0x10
    assert queue.get(sent.feedback_id).status is FeedbackStatus.PENDING
    listener = DeviceClient(broker.port, broker.cafile, device.cert, device.key, "d").start()
    try:
        listener.subscribe(f"devices/{device.physical_id}/feedback")
        assert eventually(lambda: listener.received, timeout=30)
        assert eventually(lambda: queue.get(sent.feedback_id).status is FeedbackStatus.PUBLISHED)
    finally:
        listener.stop()
    assert listener.received == [(f"devices/{device.physical_id}/feedback", b'{"stop": true}')]

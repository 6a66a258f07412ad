"""Data-plane ingestion: the message store (diagnostics by logical identity, telemetry by
unit, feedback), and the production path through Mosquitto (broker configuration, the ingest
worker, revocations followed onto the broker).

    store = MessageStore(db, clock)                  # any transport, e.g. the embedded gateway
    store.store_batch([InboundMessage(pid, MessageKind.TELEMETRY, body, received_at)])
    store.diagnostics_of("line-03-left-welding-12")
    FeedbackQueue(db, clock).send("line-03-left-welding-12", {"speed": 0.8}, actor="op")

    write_mosquitto_config(pki, BrokerPlan(dns_names=("mqtt.example",)), Path("broker"),
                           actor="cli:ops")
    # the Mosquitto client (needs paho-mqtt, so not imported here: the store does not):
    from devicetrust.ingest.worker import IngestWorker
    from devicetrust.ingest.connection import BrokerConnection
    IngestWorker(store, feedback, BrokerConnection.from_files(files, "ingest-1"), clock).start()

Never stores a message under an identity its credential did not prove, and never twice.
"""

from devicetrust.ingest.broker_files import BrokerFiles
from devicetrust.ingest.dynsec import DynsecControl, DynsecError
from devicetrust.ingest.feedback import FeedbackQueue, Routed
from devicetrust.ingest.mosquitto import BrokerPlan, WrittenConfig, write_mosquitto_config
from devicetrust.ingest.records import (
    Feedback,
    FeedbackStatus,
    InboundMessage,
    MessageKind,
    Outcome,
    StoredMessage,
    StoreResult,
)
from devicetrust.ingest.revocations import FollowReport, RevocationFollower
from devicetrust.ingest.store import MAX_BATCH, MessageStore

__all__ = [
    "MAX_BATCH",
    "BrokerFiles",
    "BrokerPlan",
    "DynsecControl",
    "DynsecError",
    "Feedback",
    "FeedbackQueue",
    "FeedbackStatus",
    "FollowReport",
    "InboundMessage",
    "MessageKind",
    "MessageStore",
    "Outcome",
    "RevocationFollower",
    "Routed",
    "StoreResult",
    "StoredMessage",
    "WrittenConfig",
    "write_mosquitto_config",
]

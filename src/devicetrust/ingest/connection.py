"""How the ingest reaches the broker: the backend listener, TLS 1.3 with the backend client
certificate, MQTT 5 with a persistent session (so QoS 1 messages it had not acknowledged are
redelivered when it comes back) and a receive maximum large enough for batching."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devicetrust.domain.errors import ConfigurationError
from devicetrust.ingest.broker_files import BrokerFiles, read_ingest_settings

RECEIVE_MAXIMUM = 1000


@dataclass(frozen=True, slots=True)
class BrokerConnection:
    host: str
    port: int
    cafile: Path  # verifies the broker (devicetrust issuing chain)
    certfile: Path
    keyfile: Path
    client_id: str
    keepalive: int = 30
    # How long the broker keeps queueing for a worker that is away (MQTT 5 §3.1.2.11.2).
    session_expiry_seconds: int = 7 * 24 * 3600

    @classmethod
    def from_files(cls, files: BrokerFiles, client_id: str) -> BrokerConnection:
        """The backend connection `mosquitto-config` wrote into `files`."""
        settings = read_ingest_settings(files)
        host, port = settings.get("backend_host"), settings.get("backend_port")
        if not isinstance(host, str) or not isinstance(port, int):
            raise ConfigurationError("ingest.config_invalid", f"{files.ingest_settings}")
        return cls(
            host=host,
            port=port,
            cafile=files.device_cafile,
            certfile=files.ingest_cert,
            keyfile=files.ingest_key,
            client_id=client_id,
        )

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.cafile))
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.load_cert_chain(str(self.certfile), str(self.keyfile))
        return context

    def client(self, *, manual_ack: bool) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=manual_ack,
        )
        client.tls_set_context(self.tls_context())
        client.max_inflight_messages_set(RECEIVE_MAXIMUM)
        client.max_queued_messages_set(0)
        return client

    def connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.session_expiry_seconds
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        return props

"""Device-side MQTT clients for the broker tests: paho-mqtt (MQTT 5 over TLS 1.3 with the
device's certificate) and a poller for outcomes read from the database."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class DeviceClient:
    """A connected device: records what it receives and when it was disconnected."""

    def __init__(self, port: int, cafile: Path, cert: Path, key: Path, client_id: str) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.disconnected_at: float | None = None
        self.connect_reason: Any = None
        self.subscribed = threading.Event()
        self.granted: list[Any] = []
        context = ssl.create_default_context(cafile=str(cafile))
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.load_cert_chain(str(cert), str(key))
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=False,
        )
        self.client.tls_set_context(context)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.port = port

    def start(self, timeout: float = 10) -> DeviceClient:
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(timeout), "device did not connect"
        return self

    def subscribe(self, topic: str, timeout: float = 10) -> list[Any]:
        self.subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(timeout)
        return self.granted

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self.connect_reason = rc
        if not rc.is_failure:
            self.connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
        self.disconnected_at = time.monotonic()
        self.disconnected.set()

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.received.append((message.topic, bytes(message.payload)))

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        self.granted = list(codes)
        self.subscribed.set()


def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Poll until `check()` is truthy (generous timeout: a loaded CI machine is slow)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)

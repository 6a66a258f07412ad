"""One MQTT 5 connection to the gateway over TLS 1.3 (paho-mqtt), for one credential.

mTLS when the keystore can give OpenSSL its key (`DeviceKey.load_into`), else the CONNECT
convention's JWT fallback (user name `jwt`, an ES256 token signed by the certificate's key
with header `x5t#S256`, audience the gateway host unless told otherwise: the gateway's
default `token_audience`). The client id is the physical id. A connection is never reused
after it closed: the client opens a new one (with the current credential) instead, so a
renewal can open the next session before the old one is dropped (the gateway hands the
session over, 0x8E to the old one).

paho's own reconnection is off: the client decides when and how to reconnect.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.serialization import Encoding
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from devicetrust.device.client._buffer import BufferedMessage
from devicetrust.device.client._errors import ConnectRefused, ServerUnreachable
from devicetrust.device.client._https import tls_context
from devicetrust.device.client._state import DeviceState
from devicetrust.device.keystore import Keystore, TlsKeyUnsupported, sign_jwt
from devicetrust.domain.clock import Clock

JWT_LIFETIME_SECONDS = 600
_CONNECTION_LOST = -1


@dataclass(frozen=True)
class Feedback:
    """A message the platform sent to the device."""

    topic: str
    payload: bytes
    content_type: str | None

    def json(self) -> object:
        return json.loads(self.payload)


@dataclass
class Hooks:
    on_ack: Callable[[Connection, int, int], None]
    on_closed: Callable[[Connection, int], None]
    on_feedback: Callable[[Feedback], None]


class Connection:
    """An MQTT 5 session; `open` blocks until CONNACK (or raises)."""

    def __init__(
        self, state: DeviceState, keystore: Keystore, ca_bundle: str, hooks: Hooks,
        clock: Clock, *, keepalive: int = 60, jwt_audience: str | None = None,
    ) -> None:
        self.state = state
        self.method = "mtls"
        self.closed_reason: int | None = None
        self._hooks = hooks
        self._connack = threading.Event()
        self._refused: int | None = None
        self._open = False
        context = tls_context(ca_bundle)
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=state.physical_id,
            protocol=mqtt.MQTTv5, reconnect_on_failure=False,
        )
        key = keystore.key(state.key_label)
        try:
            key.load_into(context, state.certificate_chain_pem.encode())
        except TlsKeyUnsupported:
            self.method = "jwt"
            audience = jwt_audience or state.mqtt_host
            client.username_pw_set("jwt", _jwt(state, keystore, clock, audience))
        client.tls_set_context(context)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self._client = client
        self._keepalive = keepalive

    @property
    def connected(self) -> bool:
        return self._open

    def open(self, timeout: float) -> None:
        self._client.connect_timeout = timeout
        try:
            self._client.connect(
                self.state.mqtt_host, self.state.mqtt_port, keepalive=self._keepalive,
                clean_start=True,
            )
        except (OSError, ssl.SSLError) as exc:
            raise ServerUnreachable(
                f"{self.state.mqtt_host}:{self.state.mqtt_port}: {type(exc).__name__}: {exc}"
            ) from exc
        self._client.loop_start()
        # Open only on a successful CONNACK: a connection the gateway closes first (e.g. a
        # client certificate its TLS layer refused) wakes the wait too, and is no session.
        if not self._connack.wait(timeout) or not self._open:
            reason = self._refused if self._refused is not None else _CONNECTION_LOST
            self.close()
            if reason == _CONNECTION_LOST:
                raise ServerUnreachable(
                    "the gateway sent no CONNACK (it closed the connection, or timed out)"
                )
            raise ConnectRefused(f"the gateway refused the connection (0x{reason:02X})",
                                 reason=reason)

    def publish(self, message: BufferedMessage) -> int:
        """Send one buffered message at QoS 1 with its `msg-id`; returns paho's mid."""
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.UserProperty = [("msg-id", message.msg_id)]
        properties.ContentType = message.content_type
        info = self._client.publish(
            self.state.topic(message.stream), message.payload, qos=1, properties=properties
        )
        return int(info.mid)

    def close(self) -> None:
        self._open = False
        try:
            self._client.disconnect()
        finally:
            self._client.loop_stop()

    def _on_connect(
        self, client: mqtt.Client, _userdata: object, _flags: object, reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._refused = int(reason.value)
        else:
            self._open = True
            client.subscribe(self.state.topic("feedback"), qos=1)
        self._connack.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: object, _flags: object, reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        was_open, self._open = self._open, False
        self.closed_reason = int(reason.value)
        self._connack.set()
        if was_open:
            self._hooks.on_closed(self, self.closed_reason)

    def _on_publish(
        self, _client: mqtt.Client, _userdata: object, mid: int, reason: ReasonCode,
        _properties: Properties,
    ) -> None:
        self._hooks.on_ack(self, mid, int(reason.value))

    def _on_message(
        self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage
    ) -> None:
        properties = getattr(message, "properties", None)
        content_type = getattr(properties, "ContentType", None)
        self._hooks.on_feedback(Feedback(message.topic, bytes(message.payload), content_type))


def _jwt(state: DeviceState, keystore: Keystore, clock: Clock, audience: str) -> str:
    """A short-lived device JWT naming the operational certificate (`x5t#S256`)."""
    now = int(clock.now().timestamp())
    thumbprint = hashlib.sha256(state.certificate.public_bytes(Encoding.DER)).digest()
    claims = {
        "sub": state.physical_id, "aud": audience, "iat": now,
        "exp": now + JWT_LIFETIME_SECONDS, "jti": secrets.token_hex(16),
    }
    header = {"x5t#S256": base64.urlsafe_b64encode(thumbprint).rstrip(b"=").decode()}
    return sign_jwt(keystore.key(state.key_label), claims, header)

"""`DeviceClient`: a provisioned device's life on the data plane, synchronous API.

One worker thread per client (plus paho's network thread per connection) owns every
decision: connect with jittered exponential backoff, send the offline buffer in order
(QoS 1, a window of messages in flight), delete a message only at its PUBACK, renew the
certificate when due (make-before-break), re-provision when told. Callers' threads only
append to the buffer and wake the worker, so `publish_*` never blocks on the network.

Re-provisioning happens when the platform sends the feedback `{"devicetrust": "reprovision"}`,
or when the gateway refuses the credential (CONNACK 0x86/0x87) and an attestation was given.
`{"devicetrust": "renew"}` renews at once. Delivery rules are `_delivery`'s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from devicetrust.device.client._attestation import Attestation
from devicetrust.device.client._backoff import Backoff
from devicetrust.device.client._buffer import BUFFER_FILE, OfflineBuffer, Overflow
from devicetrust.device.client._connection import Connection, Feedback, Hooks
from devicetrust.device.client._delivery import Delivery
from devicetrust.device.client._errors import ConnectRefused, DeviceClientError, RenewalFailed
from devicetrust.device.client._provisioning import provision
from devicetrust.device.client._reenroll import reenroll
from devicetrust.device.client._renewal import DEFAULT_RENEW_AT, seconds_until_renewal
from devicetrust.device.client._state import DeviceState, load_state, save_state
from devicetrust.device.keystore import KeyNotFound, Keystore, KeystoreError
from devicetrust.domain.clock import Clock, SystemClock

BUFFER_KEY_LABEL = "devicetrust-buffer-key"
COMMAND_KEY = "devicetrust"
MIN_RENEW_INTERVAL = 30.0
_log = logging.getLogger(__name__)


class DeviceClient:
    """A provisioned device on the data plane. Thread-safe; use as a context manager."""

    def __init__(
        self,
        data_dir: Path | str,
        keystore: Keystore,
        ca_bundle: Path | str,
        *,
        attestation: Attestation | None = None,
        on_feedback: Callable[[Feedback], None] | None = None,
        renew_at: float = DEFAULT_RENEW_AT,
        keepalive: int = 60,
        backoff: Backoff | None = None,
        max_messages: int = 10_000,
        max_bytes: int = 16 * 1024 * 1024,
        overflow: Overflow = Overflow.REFUSE,
        window: int = 32,
        connect_timeout: float = 10.0,
        jwt_audience: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self._keystore = keystore
        self._ca_bundle = str(ca_bundle)
        self._state = load_state(self.data_dir)
        self._attestation = attestation
        self._on_feedback = on_feedback
        self._renew_at = renew_at
        self._keepalive = keepalive
        self._backoff = backoff or Backoff()
        self._connect_timeout = connect_timeout
        self._jwt_audience = jwt_audience
        self._clock = clock or SystemClock()
        buffer_key = self._buffer_key()
        try:
            self._buffer = OfflineBuffer(
                self.data_dir / BUFFER_FILE, buffer_key, max_messages=max_messages,
                max_bytes=max_bytes, overflow=overflow,
            )
        finally:
            buffer_key[:] = bytes(len(buffer_key))
        self._feedback: queue.Queue[Feedback] = queue.Queue(maxsize=1000)
        self._wake = threading.Condition()
        self._woken = False
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._acks: deque[tuple[Connection, int, int]] = deque()
        self._conn: Connection | None = None
        self._delivery = Delivery(self._buffer, window)
        self._commands: deque[str] = deque()
        self._stale_key: str | None = None
        self._renew_retry = 0.0
        self._worker: threading.Thread | None = None
        self.renewals = 0
        self.reprovisions = 0
        self.last_error: DeviceClientError | None = None

    # ---- construction --------------------------------------------------------------------

    @classmethod
    def provision(
        cls, api_url: str, physical_id: str, attestation: Attestation, *,
        data_dir: Path | str, keystore: Keystore, ca_bundle: Path | str,
        max_wait: float = 300.0, **options: Any,
    ) -> DeviceClient:
        """Provision the unit (see `provision`), then return its client (not yet started);
        `attestation` is kept for re-provisioning."""
        provision(api_url, physical_id, attestation, keystore=keystore, data_dir=Path(data_dir),
                  ca_bundle=Path(ca_bundle), max_wait=max_wait)
        return cls(data_dir, keystore, ca_bundle, attestation=attestation, **options)

    def _buffer_key(self) -> bytearray:
        try:
            return self._keystore.unseal(BUFFER_KEY_LABEL)
        except KeyNotFound:
            key = bytearray(secrets.token_bytes(32))
            self._keystore.seal(BUFFER_KEY_LABEL, key)
            return key

    # ---- public API ----------------------------------------------------------------------

    @property
    def state(self) -> DeviceState:
        return self._state

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def rejected(self) -> int:
        """Messages the gateway refused (PUBACK >= 0x80), removed from the buffer."""
        return self._delivery.rejected

    @property
    def pending(self) -> int:
        """Messages not yet acknowledged by the gateway (in the offline buffer)."""
        return len(self._buffer)

    def start(self) -> None:
        """Start the worker: connect, and keep connected until `close`. Returns at once."""
        if self._worker is None:
            self._worker = threading.Thread(
                target=self._run, name=f"devicetrust-{self._state.physical_id[:8]}", daemon=True
            )
            self._worker.start()

    def connect(self, timeout: float = 30.0) -> bool:
        """`start`, then wait up to `timeout` seconds for the connection; True if connected."""
        self.start()
        return self._connected.wait(timeout)

    def publish_diagnostics(
        self, payload: Mapping[str, Any] | bytes, *, content_type: str = "application/json",
        msg_id: str | None = None,
    ) -> str:
        """Queue diagnostics (filed under the logical identity); returns the `msg-id`."""
        return self._publish("diagnostics", payload, content_type, msg_id)

    def publish_telemetry(
        self, payload: Mapping[str, Any] | bytes, *, content_type: str = "application/json",
        msg_id: str | None = None,
    ) -> str:
        """Queue telemetry (filed under the physical unit); returns the `msg-id`."""
        return self._publish("telemetry", payload, content_type, msg_id)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued message was acknowledged; True if the buffer is empty."""
        deadline = time.monotonic() + timeout
        while len(self._buffer) and time.monotonic() < deadline and not self._stop.is_set():
            self._stop.wait(0.02)
        return len(self._buffer) == 0

    def feedback(self, timeout: float | None = None) -> Feedback | None:
        """The next feedback message (waiting up to `timeout` seconds), or None."""
        try:
            return self._feedback.get(timeout=timeout)
        except queue.Empty:
            return None

    def renew(self) -> None:
        """Renew the operational certificate now (in the worker)."""
        self._command("renew")

    def reprovision(self) -> None:
        """Re-provision now with the attestation given at construction (in the worker)."""
        self._command("reprovision")

    def close(self) -> None:
        """Stop the worker, close the connection; unacknowledged messages stay buffered."""
        self._stop.set()
        self._kick()
        if self._worker is not None:
            self._worker.join(timeout=30)
        self._buffer.close()

    def __enter__(self) -> DeviceClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ---- callers' side -------------------------------------------------------------------

    def _publish(
        self, stream: str, payload: Mapping[str, Any] | bytes, content_type: str,
        msg_id: str | None,
    ) -> str:
        body = payload if isinstance(payload, bytes) else json.dumps(
            dict(payload), separators=(",", ":")).encode()
        message = self._buffer.append(stream, body, content_type, msg_id)
        self._kick()
        return message.msg_id

    def _command(self, name: str) -> None:
        self._commands.append(name)
        self._kick()

    def _kick(self) -> None:
        with self._wake:
            self._woken = True
            self._wake.notify()

    # ---- paho's thread -------------------------------------------------------------------

    def _hooks(self) -> Hooks:
        return Hooks(self._acked, self._closed, self._received)

    def _acked(self, conn: Connection, mid: int, reason: int) -> None:
        self._acks.append((conn, mid, reason))
        self._kick()

    def _closed(self, conn: Connection, reason: int) -> None:
        if conn is self._conn:
            self._connected.clear()
        self._kick()

    def _received(self, feedback: Feedback) -> None:
        command = _command_of(feedback)
        if command is not None:
            self._command(command)
        if self._on_feedback is not None:
            try:
                self._on_feedback(feedback)
            except Exception:  # the caller's bug must not kill paho's network thread
                _log.exception("device %s: the on_feedback callback failed",
                               self._state.physical_id)
        while True:
            try:
                self._feedback.put_nowait(feedback)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._feedback.get_nowait()  # the oldest unread goes: a bounded queue

    # ---- the worker ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except DeviceClientError as exc:
                self.last_error = exc
                _log.warning("device %s: %s", self._state.physical_id, exc)
                self._stop.wait(self._backoff.next_delay())
            except KeystoreError as exc:
                self.last_error = DeviceClientError(str(exc), code=exc.code)
                _log.warning("device %s: keystore: %s", self._state.physical_id, exc.code)
                self._stop.wait(self._backoff.next_delay())
        self._drop_connection()

    def _step(self) -> None:
        while self._commands:
            command = self._commands.popleft()
            if command == "reprovision":
                self._reprovision()
            elif command == "renew":
                self._renew()
        if self._conn is None or not self._conn.connected:
            self._reconnect()
        self._take_acks()
        self._pump()
        wait = seconds_until_renewal(
            self._clock.now(), self._state.not_before, self._state.not_after, self._renew_at)
        if wait == 0.0:  # due: renew now, unless a renewal just ran or failed
            wait = self._renew_retry - time.monotonic()
            if wait <= 0.0:
                self._renew()
                wait = 1.0
        self._sleep(min(wait, 1.0))

    def _sleep(self, seconds: float) -> None:
        with self._wake:
            if not self._woken and not self._stop.is_set():
                self._wake.wait(seconds)
            self._woken = False

    def _open(self, state: DeviceState) -> Connection:
        conn = Connection(state, self._keystore, self._ca_bundle, self._hooks(), self._clock,
                          keepalive=self._keepalive, jwt_audience=self._jwt_audience)
        conn.open(self._connect_timeout)
        return conn

    def _reconnect(self) -> None:
        self._drop_connection()
        try:
            conn = self._open(self._state)
        except ConnectRefused as exc:
            if exc.reason in (0x86, 0x87) and self._attestation is not None:
                _log.warning("device %s: credential refused, re-provisioning",
                             self._state.physical_id)
                self._reprovision()
                conn = self._open(self._state)
            else:
                raise
        self._adopt(conn)

    def _adopt(self, conn: Connection) -> None:
        """Make `conn` the live connection: everything unacknowledged is sent again on it
        (with the same msg-ids: the gateway stores a redelivery once)."""
        old, self._conn = self._conn, conn
        self._delivery.restart()
        self._connected.set()
        self._backoff.reset()
        if old is not None:
            old.close()
        if self._stale_key is not None:
            self._delete_key(self._stale_key)
            self._stale_key = None

    def _drop_connection(self) -> None:
        self._connected.clear()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _take_acks(self) -> None:
        while self._acks:
            conn, mid, reason = self._acks.popleft()
            if conn is self._conn:  # else a late acknowledgement from a replaced connection
                self._delivery.acknowledged(mid, reason)

    def _pump(self) -> None:
        if self._conn is not None and self._conn.connected:
            self._delivery.pump(self._conn.publish)

    def _renew(self) -> None:
        self._renew_retry = time.monotonic() + MIN_RENEW_INTERVAL
        old = self._state
        try:
            renewed = reenroll(old, self._keystore, self._ca_bundle)
        except RenewalFailed as exc:
            if exc.code != "device.renewal_needs_tls_key" or self._attestation is None:
                raise
            self._reprovision()  # a key TLS cannot use renews by attesting again
            self._adopt(self._open(self._state))
            self.renewals += 1
            return
        save_state(self.data_dir, renewed)
        self._state = renewed
        self._stale_key = old.key_label
        self._adopt(self._open(renewed))  # make before break: the gateway hands over
        self.renewals += 1

    def _reprovision(self) -> None:
        if self._attestation is None:
            raise DeviceClientError("told to re-provision, but no attestation was given",
                                    code="device.reprovision_unavailable")
        self._drop_connection()
        self._state = provision(
            self._state.api_url, self._state.physical_id, self._attestation,
            keystore=self._keystore, data_dir=self.data_dir, ca_bundle=Path(self._ca_bundle),
            clock=self._clock,
        )
        self.reprovisions += 1

    def _delete_key(self, label: str) -> None:
        with contextlib.suppress(KeyNotFound):
            self._keystore.delete_key(label)


def _command_of(feedback: Feedback) -> str | None:
    try:
        body = json.loads(feedback.payload)
    except (ValueError, UnicodeDecodeError):
        return None
    command = body.get(COMMAND_KEY) if isinstance(body, dict) else None
    return command if command in ("renew", "reprovision") else None

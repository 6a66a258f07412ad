"""A probe device: the SDK's own MQTT 5 connection (`_connection.Connection`) with hooks that
record what the gateway answered — every PUBACK's reason code by msg-id, every DISCONNECT's
and refused CONNACK's reason code — which `DeviceClient` keeps to itself."""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

from devicetrust.device.client import BufferedMessage, ConnectRefused, DeviceClientError
from devicetrust.device.client._connection import Connection, Hooks
from devicetrust.device.client._state import load_state
from devicetrust.device.keystore import Keystore
from devicetrust.domain.clock import SystemClock
from tests.device.client.platform import Platform

SUCCESS = 0x00


class Probe:
    def __init__(self, platform: Platform, data_dir: Path, keystore: Keystore) -> None:
        self._platform, self._data_dir, self._keystore = platform, data_dir, keystore
        self._lock = threading.Lock()
        self._sent: dict[tuple[int, int], str] = {}  # (connection, mid) -> msg-id
        self._acks: dict[tuple[int, int], int] = {}  # (connection, mid) -> reason code
        self.disconnects: list[int] = []  # reason codes of the server's DISCONNECTs
        self.refusals: list[int] = []  # reason codes of refused CONNECTs
        self.errors: list[str] = []  # CONNECTs that failed otherwise (no CONNACK, ...)
        self._conn: Connection | None = None
        self._conns: list[Connection] = []  # kept alive: their id() names their mids

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._conn.connected

    def connect(self) -> bool:
        """One CONNECT attempt; True if accepted, its refusal recorded otherwise."""
        self.close()
        hooks = Hooks(self._acked, self._closed, lambda _feedback: None)
        conn = Connection(load_state(self._data_dir), self._keystore,
                          str(self._platform.ca_bundle), hooks, SystemClock())
        try:
            conn.open(10.0)
        except ConnectRefused as exc:
            self.refusals.append(exc.reason)
            return False
        except DeviceClientError as exc:
            self.errors.append(str(exc))
            return False
        self._conn = conn
        self._conns.append(conn)
        return True

    def publish(self, count: int = 0, again: list[str] | None = None) -> list[str]:
        """Send `count` new messages, or the messages `again` once more (same msg-ids)."""
        conn = self._conn
        assert conn is not None
        ids = []
        for n, msg_id in enumerate(again or [secrets.token_hex(8) for _ in range(count)]):
            message = BufferedMessage(n, msg_id, "telemetry", b'{"probe":1}', "application/json")
            mid = conn.publish(message)
            with self._lock:
                self._sent[(id(conn), mid)] = msg_id
            ids.append(msg_id)
        return ids

    def acks(self) -> dict[str, int]:
        """msg-id -> reason code of its PUBACK, for the messages that got one."""
        with self._lock:
            return {self._sent[key]: reason for key, reason in self._acks.items()
                    if key in self._sent}

    def acknowledged(self) -> set[str]:
        return {m for m, reason in self.acks().items() if reason == SUCCESS}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _acked(self, conn: Connection, mid: int, reason: int) -> None:
        with self._lock:  # may come before publish() returned the mid: matched later
            self._acks[(id(conn), mid)] = reason

    def _closed(self, _conn: Connection, reason: int) -> None:
        self.disconnects.append(reason)

"""Devices publishing QoS 1 telemetry through the SDK's `DeviceClient` (offline buffer,
resend of everything unacknowledged after a reconnect), and what the server stored.

A message is acknowledged when it left the device's offline buffer: the buffer deletes a
row only at its PUBACK, so `published - buffered` is exactly the acknowledged set."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text

from devicetrust.device.client import DeviceClient
from devicetrust.device.keystore import Keystore, open_keystore
from devicetrust.store.database import Database
from tests.device.client.devices import symmetric_unit
from tests.device.client.platform import Platform

WAIT = 60.0


def until(check: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


@dataclass
class Device:
    physical_id: str
    data_dir: Path
    keystore: Keystore
    published: list[str] = field(default_factory=list)
    client: DeviceClient | None = None

    def open(self, platform: Platform) -> DeviceClient:
        self.client = DeviceClient(self.data_dir, self.keystore, platform.ca_bundle)
        self.client.start()
        return self.client

    def publish(self, count: int) -> None:
        assert self.client is not None
        start = len(self.published)
        for n in range(start, start + count):
            self.published.append(self.client.publish_telemetry({"n": n}))

    def publish_until(self, stop: threading.Event) -> None:
        """Publish without pause until `stop` is set (run in a thread: load)."""
        while not stop.is_set():
            self.publish(1)
            time.sleep(0)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def buffered(self) -> set[str]:
        """msg-ids still waiting for their PUBACK (read from the closed client's buffer)."""
        assert self.client is None, "close the client first"
        with sqlite3.connect(self.data_dir / "buffer.db") as db:
            return {row[0] for row in db.execute("SELECT msg_id FROM message")}

    def acknowledged(self) -> set[str]:
        return set(self.published) - self.buffered()


def pending(devices: list[Device]) -> int:
    """Messages the running clients still wait a PUBACK for."""
    return sum(d.client.pending for d in devices if d.client is not None)


def drained(devices: list[Device]) -> bool:
    return all(d.client is not None for d in devices) and pending(devices) == 0


@contextmanager
def load(devices: list[Device]) -> Iterator[None]:
    """Every device publishing as fast as it can for the duration of the block."""
    stop = threading.Event()
    threads = [threading.Thread(target=d.publish_until, args=(stop,), daemon=True)
               for d in devices]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join()


@contextmanager
def closing(devices: list[Device]) -> Iterator[list[Device]]:
    try:
        yield devices
    finally:
        for device in devices:
            device.close()


def provisioned_fleet(platform: Platform, root: Path, size: int) -> list[Device]:
    devices = []
    for n in range(size):
        keystore = open_keystore(f"file:{root / f'keystore-{n}.json'}", secret=os.urandom(32))
        pid, attestation = symmetric_unit(platform, keystore)
        data_dir = root / f"device-{n}"
        DeviceClient.provision(platform.url, pid, attestation, data_dir=data_dir,
                               keystore=keystore, ca_bundle=platform.ca_bundle).close()
        devices.append(Device(pid, data_dir, keystore))
    return devices


def database_url(platform: Platform) -> str:
    toml = platform.workdir / "devicetrust.toml"
    if toml.exists():
        return toml.read_text().split('url = "', 1)[1].split('"', 1)[0]
    found = list(platform.workdir.rglob("devicetrust.db"))
    assert len(found) == 1, found
    return f"sqlite+pysqlite:///{found[0]}"


def stored(url: str, physical_id: str) -> list[str]:
    """The message keys (= msg-ids) stored for the unit's telemetry, duplicates included."""
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT message_key FROM device_messages "
                "WHERE physical_id = :p AND kind = 'telemetry'"), {"p": physical_id})
            return [str(r[0]) for r in rows]
    finally:
        db.dispose()

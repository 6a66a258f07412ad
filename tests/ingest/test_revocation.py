"""Live revocation through Mosquitto: the follower rewrites the CRL and ACL files, reloads the
broker and disables the client through dynamic security, so a revoked device's session drops
at once and it cannot come back. Latencies are reported, not asserted (no wall-clock bounds
in tests); `bench/ingest.py` measures them."""

from __future__ import annotations

import subprocess
import time

import pytest

from devicetrust.domain.lifecycle import DeviceState
from devicetrust.identity import UnitSpec
from devicetrust.pki import AutoRevoker

from .clients import DeviceClient, eventually
from .conftest import ACTOR, Broker, Device, WorkerFactory


def try_publish(broker: Broker, device: Device) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "mosquitto_pub",
            *broker.cli_args(device),
            "-V",
            "mqttv5",
            "-q",
            "1",
            "-t",
            f"devices/{device.physical_id}/telemetry",
            "-m",
            "{}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def connected(broker: Broker, device: Device) -> DeviceClient:
    client = DeviceClient(broker.port, broker.cafile, device.cert, device.key, "d").start()
    client.subscribe(f"devices/{device.physical_id}/feedback")
    return client


def test_a_revoked_certificate_drops_the_live_session_and_is_refused(
    broker: Broker, workers: WorkerFactory, record_property: pytest.RecordProperty
) -> None:
    workers()
    device = broker.device("robot-1")
    bystander = broker.device("robot-2")
    me, other = connected(broker, device), connected(broker, bystander)
    try:
        start = time.monotonic()
        broker.pki.revoke(device.serial, "keyCompromise", actor=ACTOR)
        assert me.disconnected.wait(30), "the revoked device is still connected"
        assert me.disconnected_at is not None
        latency_ms = (me.disconnected_at - start) * 1000
        record_property("revoke_to_disconnect_ms", round(latency_ms))
        print(f"revoke-to-disconnect: {latency_ms:.0f} ms")
        assert try_publish(broker, device).returncode != 0  # TLS: the CRL names it now
        assert not other.disconnected.is_set()  # nobody else was touched
    finally:
        me.stop()
        other.stop()
    # the same unit with a new certificate connects again (it stays in service)
    renewed = broker.certify(device.physical_id)
    assert try_publish(broker, renewed).returncode == 0


def test_a_suspended_unit_is_dropped_and_silenced_until_reactivated(
    broker: Broker, workers: WorkerFactory, record_property: pytest.RecordProperty
) -> None:
    workers()
    device = broker.device("robot-1")
    me = connected(broker, device)
    try:
        start = time.monotonic()
        broker.identity.set_state(device.physical_id, DeviceState.SUSPENDED, actor=ACTOR)
        assert me.disconnected.wait(30)
        assert me.disconnected_at is not None
        record_property("suspend_to_disconnect_ms", round((me.disconnected_at - start) * 1000))
    finally:
        me.stop()
    # Before the AutoRevoker has put its certificate on hold, the ACL already silences it.
    assert "Not authorized" in try_publish(broker, device).stderr
    # Once it has, the handshake itself fails (certificateHold in the CRL).
    AutoRevoker(broker.pki).run_once()
    assert eventually(lambda: try_publish(broker, device).returncode != 0)
    # Reactivation lifts the hold and the deny entry: the same certificate works again.
    broker.identity.set_state(device.physical_id, DeviceState.ACTIVE, actor=ACTOR)
    AutoRevoker(broker.pki).run_once()
    assert eventually(lambda: try_publish(broker, device).returncode == 0)
    assert eventually(lambda: "Not authorized" not in try_publish(broker, device).stderr)


def test_a_replaced_unit_is_dropped_and_its_successor_connects(
    broker: Broker, workers: WorkerFactory
) -> None:
    workers()
    old = broker.device("line-03-left-welding-12")
    me = connected(broker, old)
    try:
        successor = broker.identity.register(UnitSpec("RA-7", {}), actor=ACTOR).physical_id
        broker.identity.replace("line-03-left-welding-12", successor, actor=ACTOR)
        assert me.disconnected.wait(30)
    finally:
        me.stop()
    assert "Not authorized" in try_publish(broker, old).stderr
    AutoRevoker(broker.pki).run_once()  # superseded: the old certificate fails TLS
    assert eventually(lambda: try_publish(broker, old).returncode != 0)
    broker.identity.set_state(successor, DeviceState.ACTIVE, actor=ACTOR)
    assert try_publish(broker, broker.certify(successor)).returncode == 0

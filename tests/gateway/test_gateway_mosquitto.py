"""The gateway against Mosquitto's command-line clients (`mosquitto_pub`, `mosquitto_sub`,
MQTT 5 and 3.1.1) with `--cafile/--cert/--key`, and with an HMAC token as the password."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from devicetrust.deviceauth import DeviceAuthService, encode_token
from devicetrust.domain import FixedClock
from devicetrust.gateway import FeedbackState, GatewayThread
from devicetrust.ingest.store import MessageStore

from .gateway_fixtures import (
    ACTOR,
    AUDIENCE,
    WAIT,
    Device,
    Tls,
    mosquitto_clients,
)

NAME = "line-03-left-welding-12"
VERSIONS = ["mqttv5", "mqttv311"]


@pytest.fixture(autouse=True)
def _clients() -> None:
    mosquitto_clients()


def tls_args(tls: Tls, gateway: GatewayThread, version: str, client_id: str,
             device: Device | None = None) -> list[str]:
    args = ["-h", "127.0.0.1", "-p", str(gateway.port), "-V", version, "-i", client_id,
            "--cafile", str(tls.client_ca), "--tls-version", "tlsv1.3"]
    if device is not None:
        args += ["--cert", str(device.cert), "--key", str(device.key)]
    return args


def pub(args: list[str], topic: str, message: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mosquitto_pub", *args, "-t", topic, "-m", message, "-q", "1"],
                          capture_output=True, text=True, timeout=WAIT, check=False)


@pytest.mark.parametrize("version", VERSIONS)
def test_mosquitto_pub_with_a_client_certificate(
    tls: Tls, gateway: GatewayThread, make_device: Callable[..., Device],
    message_store: MessageStore, version: str,
) -> None:
    device = make_device(NAME)
    args = tls_args(tls, gateway, version, device.physical_id, device)
    done = pub(args, f"devices/{device.physical_id}/diagnostics", '{"parts_per_hour": 42}')
    assert done.returncode == 0, done.stderr
    [stored] = message_store.diagnostics_of(NAME)
    assert (stored.physical_id, stored.payload) == (device.physical_id, {"parts_per_hour": 42})


@pytest.mark.parametrize("version", VERSIONS)
def test_mosquitto_pub_with_an_hmac_token(
    tls: Tls, gateway: GatewayThread, make_device: Callable[..., Device],
    auth: DeviceAuthService, clock: FixedClock, message_store: MessageStore, version: str,
) -> None:
    device = make_device(NAME)
    with auth.token_keys.rotate(device.physical_id, actor=ACTOR) as shown:
        token = encode_token(shown.key, device.physical_id, shown.version.version, AUDIENCE,
                             clock.now() + timedelta(minutes=10))
    args = [*tls_args(tls, gateway, version, device.physical_id), "-u", "hmac-token",
            "-P", token]
    done = pub(args, f"devices/{device.physical_id}/telemetry", '{"rpm": 900}')
    assert done.returncode == 0, done.stderr
    assert [m.payload for m in message_store.telemetry_of(device.physical_id)] == [
        {"rpm": 900}]


@pytest.mark.parametrize("version", VERSIONS)
def test_mosquitto_pub_refusals(
    tls: Tls, gateway: GatewayThread, make_device: Callable[..., Device],
    message_store: MessageStore, version: str,
) -> None:
    device, other = make_device(NAME), make_device()
    own = tls_args(tls, gateway, version, device.physical_id, device)
    foreign = pub(own, f"devices/{other.physical_id}/telemetry", '{"x": 1}')
    if version == "mqttv5":  # PUBACK 0x87, which mosquitto_pub reports (and exits 0)
        assert "Publish 1 failed: Not authorized" in foreign.stderr
    else:  # 3.1.1 has no negative PUBACK: the gateway closes the connection
        assert foreign.returncode != 0
    anonymous = pub(tls_args(tls, gateway, version, device.physical_id),
                    f"devices/{device.physical_id}/telemetry", '{"x": 1}')
    assert anonymous.returncode != 0
    assert "not authori" in anonymous.stderr.lower()
    assert message_store.telemetry_of(other.physical_id) == []
    assert message_store.telemetry_of(device.physical_id) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_mosquitto_sub_receives_feedback_and_is_refused_wildcards(
    tls: Tls, gateway: GatewayThread, make_device: Callable[..., Device], version: str,
) -> None:
    device = make_device(NAME)
    args = tls_args(tls, gateway, version, device.physical_id, device)
    refused = subprocess.run(["mosquitto_sub", *args, "-t", "#", "-C", "1", "-W", "10"],
                             capture_output=True, text=True, timeout=WAIT, check=False)
    assert "All subscription requests were denied" in refused.stderr  # SUBACK 0x87 / 0x80
    sub = subprocess.Popen(
        ["mosquitto_sub", *args, "-t", f"devices/{device.physical_id}/feedback", "-q", "1",
         "-C", "1", "-W", str(int(WAIT)), "-F", "%t|%q|%p"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + WAIT
        while not gateway.is_connected(device.physical_id):  # a loaded machine: wait, then
            assert time.monotonic() < deadline, "mosquitto_sub never connected"
            time.sleep(0.05)  # publish (each QUEUED one fills the session's queue)
        while (state := gateway.publish_feedback(
                device.physical_id, b'{"speed": 0.8}')) is not FeedbackState.SENT:
            assert state is not FeedbackState.QUOTA_EXCEEDED
            assert time.monotonic() < deadline, "mosquitto_sub never subscribed"
            time.sleep(0.05)
        out, err = sub.communicate(timeout=WAIT)
    finally:
        sub.kill()
        sub.wait()
    assert sub.returncode == 0, err
    # Feedback queued before the subscription arrived first, so the first line is one of
    # the identical messages published while waiting.
    assert out.splitlines()[0] == f'devices/{device.physical_id}/feedback|1|{{"speed": 0.8}}'

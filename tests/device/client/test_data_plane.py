"""The device client against a real `devicetrust serve`: provisioning (symmetric key and
x509), mTLS on the embedded gateway, diagnostics and telemetry read back through the API,
feedback sent by the operator, the offline buffer across a restart, renewal and
re-provisioning."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from devicetrust.device.client import (
    AsyncDeviceClient,
    Backoff,
    DeviceClient,
    Feedback,
    ProvisioningPending,
    ProvisioningRefused,
    ServerUnreachable,
    SymmetricKeyAttestation,
    load_state,
    provision,
)
from devicetrust.device.client._state import save_state
from devicetrust.device.keystore import KeyNotFound, Keystore
from tests.conftest import free_port
from tests.device.client.devices import symmetric_unit, x509_unit
from tests.device.client.platform import Platform

WAIT = 20.0


def _until(check: object, timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def _stored(platform: Platform, path: str) -> list[dict[str, object]]:
    return list(platform.api("GET", path)["items"])


def test_symmetric_key_provisioning_then_mtls_data_and_feedback(
    platform: Platform, keystore: Keystore, tmp_path: Path
) -> None:
    pid, attestation = symmetric_unit(platform, keystore)
    data_dir = tmp_path / "device"
    received: list[Feedback] = []
    with DeviceClient.provision(
        platform.url, pid, attestation, data_dir=data_dir, keystore=keystore,
        ca_bundle=platform.ca_bundle, on_feedback=received.append,
    ) as client:
        state = client.state
        assert state.physical_id == pid and state.logical_name is not None
        assert (data_dir / "device.json").stat().st_mode & 0o777 == 0o600
        assert client.connect(WAIT)
        diag = client.publish_diagnostics({"parts_per_hour": 41})
        client.publish_telemetry({"torque": [1.5, 2.5]})
        assert client.flush(WAIT)

        diagnostics = _stored(platform, f"/v1/data/diagnostics/{state.logical_name}")
        assert [(m["physical_id"], m["payload"], m["message_key"]) for m in diagnostics] == [
            (pid, {"parts_per_hour": 41}, diag)
        ]
        telemetry = _stored(platform, f"/v1/data/telemetry/{pid}")
        assert [m["payload"] for m in telemetry] == [{"torque": [1.5, 2.5]}]

        platform.api("POST", f"/v1/feedback/{state.logical_name}", {"payload": {"speed": 0.8}})
        got = client.feedback(timeout=WAIT)
        assert got is not None and got.json() == {"speed": 0.8}
        assert [f.json() for f in received] == [{"speed": 0.8}]


def test_x509_provisioning_and_a_refusal_carries_the_problem_code(
    platform: Platform, keystore: Keystore, tmp_path: Path
) -> None:
    pid, attestation = x509_unit(platform, keystore)
    state = provision(platform.url, pid, attestation, keystore=keystore,
                      data_dir=tmp_path / "device", ca_bundle=platform.ca_bundle)
    certificate = state.certificate
    assert pid in certificate.subject.rfc4514_string()
    assert keystore.key(state.key_label).public_key() == certificate.public_key()

    other = platform.unit()  # a unit this birth certificate does not name
    with pytest.raises(ProvisioningRefused) as refused:
        provision(platform.url, other, attestation, keystore=keystore,
                  data_dir=tmp_path / "other", ca_bundle=platform.ca_bundle)
    assert refused.value.code.startswith("provisioning.")
    assert not (tmp_path / "other" / "device.json").exists()
    assert sorted(keystore.labels()) == sorted(["birth", state.key_label])


def test_the_buffer_survives_a_restart_and_is_flushed_in_order(
    platform: Platform, keystore: Keystore, tmp_path: Path
) -> None:
    pid, attestation = symmetric_unit(platform, keystore)
    data_dir = tmp_path / "device"
    provision(platform.url, pid, attestation, keystore=keystore, data_dir=data_dir,
              ca_bundle=platform.ca_bundle)
    offline = DeviceClient(data_dir, keystore, platform.ca_bundle)  # never connects
    ids = [offline.publish_telemetry({"n": n}) for n in range(5)]
    offline.close()
    assert b'"n"' not in (data_dir / "buffer.db").read_bytes()  # encrypted at rest

    with DeviceClient(data_dir, keystore, platform.ca_bundle) as client:
        assert client.pending == 5
        assert client.connect(WAIT) and client.flush(WAIT)
    stored = _stored(platform, f"/v1/data/telemetry/{pid}")
    assert [m["message_key"] for m in reversed(stored)] == ids  # newest first: in order


def test_renewal_at_the_configured_fraction_swaps_the_key_without_losing_messages(
    platform: Platform, keystore: Keystore, tmp_path: Path
) -> None:
    pid, attestation = symmetric_unit(platform, keystore)
    data_dir = tmp_path / "device"
    first = provision(platform.url, pid, attestation, keystore=keystore, data_dir=data_dir,
                      ca_bundle=platform.ca_bundle)
    with DeviceClient(data_dir, keystore, platform.ca_bundle, renew_at=1e-9) as client:
        stop = threading.Event()
        sent: list[str] = []

        def publisher() -> None:
            while not stop.is_set():
                sent.append(client.publish_telemetry({"n": len(sent)}))
                time.sleep(0.01)

        thread = threading.Thread(target=publisher)
        thread.start()
        assert client.connect(WAIT)
        assert _until(lambda: client.renewals >= 1), client.last_error
        stop.set()
        thread.join()
        assert client.flush(WAIT)
        renewed = client.state
    assert renewed.key_label != first.key_label
    assert renewed.certificate.serial_number != first.certificate.serial_number
    assert load_state(data_dir) == renewed
    with pytest.raises(KeyNotFound):
        keystore.key(first.key_label)
    stored = _stored(platform, f"/v1/data/telemetry/{pid}?limit=1000")
    assert sorted(str(m["message_key"]) for m in stored) == sorted(sent)  # none lost


def test_revoked_certificate_makes_the_client_reprovision(
    platform: Platform, keystore: Keystore, tmp_path: Path
) -> None:
    pid, attestation = symmetric_unit(platform, keystore)
    data_dir = tmp_path / "device"
    with DeviceClient.provision(platform.url, pid, attestation, data_dir=data_dir,
                                keystore=keystore, ca_bundle=platform.ca_bundle) as client:
        assert client.connect(WAIT)
        serial = format(client.state.certificate.serial_number, "x")
        platform.api("POST", f"/v1/pki/certificates/{serial}/revoke", {"reason": "keyCompromise"})
        assert _until(lambda: client.reprovisions >= 1 and client.connected), client.last_error
        client.publish_diagnostics({"after": "reprovision"})
        assert client.flush(WAIT)
        assert client.state.certificate.serial_number != int(serial, 16)


def test_async_client_publishes_and_iterates_feedback(
    platform: Platform, keystore: Keystore, tmp_path: Path
) -> None:
    pid, attestation = symmetric_unit(platform, keystore)

    async def scenario() -> object:
        client = await AsyncDeviceClient.provision(
            platform.url, pid, attestation, data_dir=tmp_path / "device", keystore=keystore,
            ca_bundle=platform.ca_bundle)
        async with client:
            await client.publish_diagnostics({"parts_per_hour": 7})
            assert await client.flush(WAIT)
            name = client.state.logical_name
            await asyncio.to_thread(
                platform.api, "POST", f"/v1/feedback/{name}", {"payload": {"mode": "slow"}})
            iterator = client.feedback()
            message = await asyncio.wait_for(anext(iterator), WAIT)
            await iterator.aclose()
            return message.json()

    assert asyncio.run(scenario()) == {"mode": "slow"}


def test_pending_approval_is_waited_out_as_the_server_advises(
    platform: Platform, keystore: Keystore, tmp_path: Path
) -> None:
    pid = platform.unit()
    created = platform.api("POST", "/v1/enrollments/individual", {
        "physical_id": pid, "attestation": "symmetric-key", "allocation": {"policy": "manual"},
    })
    keystore.seal("provisioning-key", base64.urlsafe_b64decode(created["key"] + "=="))
    advised: list[float] = []

    def operator_approves(seconds: float) -> None:  # instead of sleeping Retry-After
        advised.append(seconds)
        platform.api("POST", f"/v1/enrollments/pending/{pid}/approve", {"name": f"manual-{pid[:8]}"})

    state = provision(platform.url, pid, SymmetricKeyAttestation(keystore), keystore=keystore,
                      data_dir=tmp_path / "device", ca_bundle=platform.ca_bundle,
                      sleep=operator_approves)
    assert advised == [30.0]  # the 202's Retry-After
    assert state.logical_name == f"manual-{pid[:8]}"
    assert keystore.labels().count(state.key_label) == 1


def test_pending_beyond_the_callers_patience_raises_and_leaves_no_key(
    platform: Platform, keystore: Keystore, tmp_path: Path
) -> None:
    pid = platform.unit()
    created = platform.api("POST", "/v1/enrollments/individual", {
        "physical_id": pid, "attestation": "symmetric-key", "allocation": {"policy": "manual"},
    })
    keystore.seal("provisioning-key", base64.urlsafe_b64decode(created["key"] + "=="))
    with pytest.raises(ProvisioningPending) as pending:
        provision(platform.url, pid, SymmetricKeyAttestation(keystore), keystore=keystore,
                  data_dir=tmp_path / "device", ca_bundle=platform.ca_bundle, max_wait=0)
    assert pending.value.retry_after == 30.0
    assert keystore.labels() == [] and not (tmp_path / "device" / "device.json").exists()


def test_the_reprovision_feedback_command_is_obeyed(
    platform: Platform, keystore: Keystore, tmp_path: Path
) -> None:
    pid, attestation = symmetric_unit(platform, keystore)
    with DeviceClient.provision(platform.url, pid, attestation, data_dir=tmp_path / "device",
                                keystore=keystore, ca_bundle=platform.ca_bundle) as client:
        assert client.connect(WAIT)
        before = client.state
        platform.api("POST", f"/v1/feedback/{before.logical_name}",
                     {"payload": {"devicetrust": "reprovision"}})
        assert _until(lambda: client.reprovisions == 1 and client.connected), client.last_error
        assert client.state.key_label != before.key_label
        assert client.state.logical_name == before.logical_name
        assert before.key_label not in keystore.labels()


def test_an_unreachable_gateway_is_retried_with_growing_backoff_and_nothing_is_lost(
    platform: Platform, keystore: Keystore, tmp_path: Path
) -> None:
    pid, attestation = symmetric_unit(platform, keystore)
    data_dir = tmp_path / "device"
    state = provision(platform.url, pid, attestation, keystore=keystore, data_dir=data_dir,
                      ca_bundle=platform.ca_bundle)
    save_state(data_dir, replace(state, mqtt_port=free_port()))  # nobody listens there
    backoff = Backoff(base=0.01, cap=0.05)
    with DeviceClient(data_dir, keystore, platform.ca_bundle, backoff=backoff) as client:
        client.start()
        sent = client.publish_diagnostics({"while": "offline"})
        assert _until(lambda: backoff.attempt >= 3)
        assert isinstance(client.last_error, ServerUnreachable) and not client.connected
        assert client.pending == 1
    save_state(data_dir, state)  # the gateway is back (the client rereads at start)
    with DeviceClient(data_dir, keystore, platform.ca_bundle) as client:
        assert client.connect(WAIT) and client.flush(WAIT)
    stored = _stored(platform, f"/v1/data/diagnostics/{state.logical_name}")
    assert [m["message_key"] for m in stored] == [sent]


def test_a_certificate_the_gateway_refuses_in_tls_never_counts_as_connected(
    platform: Platform, keystore: Keystore, tmp_path: Path
) -> None:
    """An impostor: a real unit's id and gateway, a self-signed certificate. The gateway's
    TLS layer closes the connection before any CONNACK; the client must not report a
    session (it once did: a close woke the CONNACK wait) and delivers nothing."""
    from devicetrust.device.keystore import open_keystore
    from devicetrust.device.simulator._faults import write_impostor_state

    pid, attestation = symmetric_unit(platform, keystore)
    state = provision(platform.url, pid, attestation, keystore=keystore,
                      data_dir=tmp_path / "real", ca_bundle=platform.ca_bundle)
    foreign = open_keystore("memory:impostor-test")
    write_impostor_state(state, foreign.create_key("foreign"), tmp_path / "impostor")
    with DeviceClient(tmp_path / "impostor", foreign, platform.ca_bundle) as impostor:
        impostor.publish_telemetry({"impostor": True})
        assert not impostor.connect(3.0)
        assert not impostor.connected
        assert isinstance(impostor.last_error, ServerUnreachable)
        assert impostor.pending == 1  # never acknowledged, so still buffered
    assert _stored(platform, f"/v1/data/telemetry/{pid}") == []

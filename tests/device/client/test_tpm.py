"""TPM provisioning with the device client on swtpm against a real `devicetrust serve`: the
EK registered at the factory, credential activation and certification of an operational key
born in the TPM; the key cannot do TLS, so the client connects with its JWT fallback, and
renews by attesting again."""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devicetrust.device.client import DeviceClient, TpmAttestation
from devicetrust.device.keystore import Keystore, open_keystore
from tests.device.client.platform import Platform
from tests.hardware import SwtpmProcess, require_swtpm

WAIT = 20.0


@pytest.fixture
def tpm_keystore(tmp_path: Path) -> Iterator[Keystore]:
    require_swtpm()
    process = SwtpmProcess(tmp_path / "tpm")
    store = open_keystore(f"tpm2:{process.tcti}?dir={tmp_path / 'blobs'}")
    yield store
    store.close()
    process.stop()


def test_tpm_provisioning_then_jwt_connection_and_renewal(
    platform: Platform, tpm_keystore: Keystore, tmp_path: Path
) -> None:
    attestation = TpmAttestation(tpm_keystore)  # type: ignore[arg-type]
    ek = attestation.keystore.tpm.endorsement_key()
    pid = platform.unit()
    name = f"tpm-cell-{secrets.token_hex(3)}"
    platform.api("POST", "/v1/enrollments/individual", {
        "physical_id": pid, "attestation": "tpm",
        "allocation": {"policy": "static", "static_name": name},
        "tpm_ek_public": base64.b64encode(ek.public).decode(),
    })
    with DeviceClient.provision(
        platform.url, pid, attestation, data_dir=tmp_path / "device", keystore=tpm_keystore,
        ca_bundle=platform.ca_bundle,
    ) as client:
        assert client.state.logical_name == name
        assert tpm_keystore.key(client.state.key_label).hardware
        assert client.connect(WAIT), client.last_error
        client.publish_diagnostics({"parts_per_hour": 3})
        assert client.flush(WAIT)
        first = client.state.certificate.serial_number
        client.renew()
        deadline = time.monotonic() + WAIT
        while client.renewals < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.renewals == 1 and client.connected, client.last_error
        assert client.state.certificate.serial_number != first
    stored = platform.api("GET", f"/v1/data/diagnostics/{name}")["items"]
    assert [m["payload"] for m in stored] == [{"parts_per_hour": 3}]

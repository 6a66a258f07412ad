"""TPM provisioning with the device client on swtpm against a real `devicetrust serve`: the
EK registered at the factory, credential activation and certification of an operational key
born in the TPM; the key cannot do TLS, so the client connects with its JWT fallback, and
renews by attesting again."""

from __future__ import annotations

import base64
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devicetrust.device.client import DeviceClient, TpmAttestation, attest_boot
from devicetrust.device.keystore import Keystore, open_keystore
from tests.conftest import require_service
from tests.device.client.platform import Platform
from tests.hardware import SwtpmProcess, require_swtpm

WAIT = 20.0


@pytest.fixture
def swtpm(tmp_path: Path) -> Iterator[SwtpmProcess]:
    require_swtpm()
    process = SwtpmProcess(tmp_path / "tpm")
    yield process
    process.stop()


@pytest.fixture
def tpm_keystore(swtpm: SwtpmProcess, tmp_path: Path) -> Iterator[Keystore]:
    store = open_keystore(f"tpm2:{swtpm.tcti}?dir={tmp_path / 'blobs'}")
    yield store
    store.close()


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


def test_boot_reattestation_follows_the_pcrs(
    platform: Platform, swtpm: SwtpmProcess, tpm_keystore: Keystore, tmp_path: Path
) -> None:
    """After TPM provisioning (its quote binds the AK), the unit re-attests its boot over
    the device API with a JWT signed in the TPM: matched once the operator vouches for its
    PCRs, unknown after `tpm2_pcrextend` changes its boot loader's PCR."""
    if shutil.which("tpm2_pcrextend") is None:
        require_service("tpm2-tools", "tpm2_pcrextend not on PATH (apt install tpm2-tools)")
    attestation = TpmAttestation(tpm_keystore)  # type: ignore[arg-type]
    ek = attestation.keystore.tpm.endorsement_key()
    pid = platform.unit()
    platform.api("POST", "/v1/enrollments/individual", {
        "physical_id": pid, "attestation": "tpm", "require_hardware_key": True,
        "allocation": {"policy": "static", "static_name": f"tpm-cell-{secrets.token_hex(3)}"},
        "tpm_ek_public": base64.b64encode(ek.public).decode(),
    })
    client = DeviceClient.provision(
        platform.url, pid, attestation, data_dir=tmp_path / "device", keystore=tpm_keystore,
        ca_bundle=platform.ca_bundle,
    )
    try:
        first = attest_boot(client.state, tpm_keystore, platform.ca_bundle)
        assert first["verdict"] == "no_golden_measurements"
        golden = f"cell-fw-{secrets.token_hex(3)}"
        platform.api("POST", "/v1/attestation/golden", {"name": golden, "from_unit": pid})

        matched = attest_boot(client.state, tpm_keystore, platform.ca_bundle)
        assert (matched["verdict"], matched["golden"]) == ("matched", golden)

        subprocess.run(
            ["tpm2_pcrextend", "-T", swtpm.tcti, "4:sha256=" + "ee" * 32], check=True, timeout=20,
            capture_output=True,
        )
        changed = attest_boot(client.state, tpm_keystore, platform.ca_bundle)
        assert changed["verdict"] == "unknown_measurements"
        assert changed["detail"].endswith("differs in PCR 4")
        history = platform.api("GET", f"/v1/attestation/devices/{pid}")["items"]
        assert [a["verdict"] for a in history[:3]] == [
            "unknown_measurements", "matched", "no_golden_measurements",
        ]
    finally:
        client.close()

"""Pure parts of the client: the state file, the reconnection backoff, the renewal
schedule."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from devicetrust.device.client import (
    Backoff,
    DeviceState,
    NotProvisioned,
    StateFileInvalid,
    load_state,
    renewal_due_at,
)
from devicetrust.device.client._renewal import seconds_until_renewal
from devicetrust.device.client._state import save_state
from devicetrust.domain.ids import LogicalName, PhysicalId

START = datetime(2030, 1, 1, tzinfo=UTC)


def _certificate() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unit")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(START).not_valid_after(START + timedelta(hours=24))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.PEM).decode()


def _state() -> DeviceState:
    return DeviceState(
        physical_id=PhysicalId("c2c38155-b0d2-48b6-82fd-22fe3b316224"),
        logical_name=LogicalName("line-03-left-welding-12"), api_url="https://p:8443",
        key_label="operational-1", certificate_chain_pem=_certificate(),
        mqtt_host="p", mqtt_port=8883, topics={"diagnostics": "devices/x/diagnostics"},
    )


def test_state_round_trips_in_a_private_file(tmp_path: Path) -> None:
    state = _state()
    save_state(tmp_path, state)
    assert load_state(tmp_path) == state
    assert (tmp_path / "device.json").stat().st_mode & 0o777 == 0o600
    assert "PRIVATE" not in (tmp_path / "device.json").read_text()
    assert state.topic("diagnostics") == "devices/x/diagnostics"
    assert state.topic("feedback") == f"devices/{state.physical_id}/feedback"


def test_missing_or_bad_state_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NotProvisioned):
        load_state(tmp_path)
    (tmp_path / "device.json").write_text("{nope")
    with pytest.raises(StateFileInvalid):
        load_state(tmp_path)
    good = _state().to_json()
    for broken in ({**good, "version": 99}, {**good, "mqtt_port": "x"},
                   {**good, "certificate_chain_pem": "junk"}, {**good, "key_label": ""}):
        (tmp_path / "device.json").write_text(json.dumps(broken))
        with pytest.raises(StateFileInvalid):
            load_state(tmp_path)


def test_backoff_grows_exponentially_with_full_jitter_and_resets() -> None:
    backoff = Backoff(base=1.0, cap=8.0, floor=0.0, rng=random.Random(7))
    ceilings = [1, 2, 4, 8, 8, 8]
    for ceiling in ceilings:
        assert 0.0 <= backoff.next_delay() <= ceiling
    draws = [Backoff(base=1.0, cap=8.0, rng=random.Random(s)).next_delay() for s in range(20)]
    assert len(set(draws)) > 1  # jittered: a fleet does not retry in lock-step
    backoff.reset()
    assert backoff.attempt == 0


def test_renewal_is_due_at_two_thirds_of_the_lifetime_by_default() -> None:
    end = START + timedelta(hours=24)
    assert renewal_due_at(START, end, 2 / 3) == START + timedelta(hours=16)
    assert seconds_until_renewal(START + timedelta(hours=15), START, end, 2 / 3) == 3600
    assert seconds_until_renewal(START + timedelta(hours=20), START, end, 2 / 3) == 0
    for fraction in (0.0, 1.0, -1.0):
        with pytest.raises(ValueError):
            renewal_due_at(START, end, fraction)

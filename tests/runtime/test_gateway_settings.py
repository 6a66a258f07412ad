"""`[gateway]`: where the MQTT data plane listens and what a provisioned device is told
(host, port, topics), from the file and `DEVICETRUST_GATEWAY_*`, down to the answer a device
gets from `POST /v1/provisioning/register`."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from devicetrust.api import create_app
from devicetrust.domain import FixedClock
from devicetrust.domain.errors import ConfigurationError
from devicetrust.identity import UnitSpec
from devicetrust.provisioning import Allocation, AllocationPolicy, encode_token
from devicetrust.runtime import Platform, Settings, load_settings
from devicetrust.runtime.container import data_plane_of
from devicetrust.runtime.settings import DatabaseSettings, GatewaySettings, PkiSettings
from devicetrust.store.database import Database
from devicetrust.vault import Vault
from tests.provisioning.conftest import csr_for, new_key
from tests.software_keys import allow_software_keys


@pytest.fixture(autouse=True)
def _no_local_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`load_settings` reads ./devicetrust.toml when there is one: run away from any."""
    monkeypatch.chdir(tmp_path)


def test_defaults_tell_devices_the_public_pki_host_on_8883() -> None:
    settings = load_settings(env={"DEVICETRUST_PKI_PUBLIC_URL": "https://pki.plant-a.example"})
    assert settings.gateway == GatewaySettings()
    assert (settings.gateway.port, settings.gateway.topic_prefix) == (8883, "devices")
    plane = data_plane_of(settings)
    assert (plane.mqtt_host, plane.mqtt_port) == ("pki.plant-a.example", 8883)
    assert plane.topics("u1")["telemetry"] == "devices/u1/telemetry"


def test_file_then_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "dt.toml"
    cfg.write_text(
        '[gateway]\nhost = "0.0.0.0"\nport = 18883\npublic_host = "mqtt.plant-a.example"\n'
        'topic_prefix = "plant-a/devices"\n'
    )
    settings = load_settings(
        cfg,
        env={
            "DEVICETRUST_GATEWAY_PUBLIC_HOST": "mqtt.internal.example",
            "DEVICETRUST_GATEWAY_PUBLIC_PORT": "443",
        },
    )
    assert settings.gateway.host == "0.0.0.0"  # listen address, never told to devices
    assert settings.gateway.port == 18883
    plane = data_plane_of(settings)
    assert (plane.mqtt_host, plane.mqtt_port) == ("mqtt.internal.example", 443)
    assert plane.topics("u1")["feedback"] == "plant-a/devices/u1/feedback"

    without_public_port = load_settings(cfg, env={})
    assert data_plane_of(without_public_port).mqtt_port == 18883
    assert data_plane_of(without_public_port).mqtt_host == "mqtt.plant-a.example"


@pytest.mark.parametrize(
    "env",
    [
        {"DEVICETRUST_GATEWAY_PORT": "0"},
        {"DEVICETRUST_GATEWAY_PORT": "65536"},
        {"DEVICETRUST_GATEWAY_PUBLIC_PORT": "mqtt"},
        {"DEVICETRUST_GATEWAY_PUBLIC_HOST": ""},
        {"DEVICETRUST_GATEWAY_TOPIC_PREFIX": "devices/+"},
        {"DEVICETRUST_GATEWAY_TOPIC_PREFIX": "devices/#"},
        {"DEVICETRUST_GATEWAY_TOPIC_PREFIX": "/devices"},
        {"DEVICETRUST_GATEWAY_TOPIC_PREFIX": "devices/"},
        {"DEVICETRUST_GATEWAY_TOPIC_PREFIX": "a//b"},
        {"DEVICETRUST_GATEWAY_TOPIC_PREFIX": "$SYS"},
        {"DEVICETRUST_GATEWAY_TOPIC_PREFIX": ""},
        {"DEVICETRUST_GATEWAY_MESSAGE_RATE": "0"},
        {"DEVICETRUST_GATEWAY_MESSAGE_BURST": "0"},
        {"DEVICETRUST_GATEWAY_SERVER_CERT_HOURS": "0"},
    ],
)
def test_bad_gateway_values_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as err:
        load_settings(env=env)
    assert err.value.code == "config.invalid"
    assert "gateway" in err.value.message


def test_quota_and_certificate_lifetime_from_the_environment() -> None:
    settings = load_settings(env={"DEVICETRUST_GATEWAY_MESSAGE_RATE": "50",
                                  "DEVICETRUST_GATEWAY_MESSAGE_BURST": "200",
                                  "DEVICETRUST_GATEWAY_SERVER_CERT_HOURS": "6"})
    gateway = settings.gateway
    assert (gateway.message_rate, gateway.message_burst, gateway.server_cert_hours) == (
        50.0, 200, 6.0)


def test_unknown_gateway_key_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "dt.toml"
    cfg.write_text("[gateway]\npublic_hots = 'x'\n")
    with pytest.raises(ConfigurationError):
        load_settings(cfg, env={})


@pytest.fixture
def platform(db: Database, clock: FixedClock, tmp_path: Path) -> Iterator[Platform]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database=DatabaseSettings(url=db.url),
        pki=PkiSettings(public_url="https://pki.plant-a.example"),
        gateway=GatewaySettings(
            public_host="mqtt.plant-a.example", port=8884, topic_prefix="plant-a/units"
        ),
    )
    built = Platform(settings, clock=clock, vault=Vault.from_key(os.urandom(32)))
    built.pki.init_hierarchy(actor="test")
    allow_software_keys(built.policy)
    yield built
    built.close()


def test_a_provisioned_device_is_told_the_configured_gateway(
    platform: Platform, clock: FixedClock
) -> None:
    enrollments = platform.provisioning.enrollments
    enrollments.create_symmetric_group(
        "line-03", Allocation(AllocationPolicy.POOL, pool_pattern="w-{01..09}"), actor="op"
    )
    pid = platform.identity.register(UnitSpec("arm-r7", {}), actor="factory").physical_id
    key = enrollments.derive_device_key("line-03", pid)
    token = encode_token(key, pid, clock.now() + timedelta(minutes=5), secrets.token_urlsafe(16))
    register = {
        "physical_id": pid,
        "method": "symmetric-key",
        "csr": csr_for(new_key()).decode(),
        "evidence": {"token": token},
    }
    with TestClient(create_app(platform)) as client:
        answer = client.post("/v1/provisioning/register", json=register)

    assert answer.status_code == 200, answer.text
    out = answer.json()
    assert (out["mqtt_host"], out["mqtt_port"]) == ("mqtt.plant-a.example", 8884)
    assert out["topics"] == {
        "diagnostics": f"plant-a/units/{pid}/diagnostics",
        "telemetry": f"plant-a/units/{pid}/telemetry",
        "feedback": f"plant-a/units/{pid}/feedback",
    }

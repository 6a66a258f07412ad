"""The device's persisted state: what provisioning gave it, in `<data dir>/device.json`.

A versioned JSON file, mode 0600, written atomically (temporary file, fsync, rename) so a
power cut leaves the old state or the new one, never half of each. It holds no secret: the
private keys stay in the keystore, and the file names them only by label.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography import x509

from devicetrust.device.client._errors import NotProvisioned, StateFileInvalid
from devicetrust.domain.ids import LogicalName, PhysicalId

STATE_FILE = "device.json"
STATE_VERSION = 1


@dataclass(frozen=True)
class DeviceState:
    """Who the device is and how it reaches the platform.

    `certificate_chain_pem` is the operational certificate first, then its CA chain;
    `key_label` names its private key in the keystore."""

    physical_id: PhysicalId
    logical_name: LogicalName | None
    api_url: str
    key_label: str
    certificate_chain_pem: str
    mqtt_host: str
    mqtt_port: int
    topics: dict[str, str] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate_chain_pem.encode())

    @property
    def not_before(self) -> datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc

    def topic(self, stream: str) -> str:
        """The MQTT topic of `diagnostics`, `telemetry` or `feedback`."""
        return self.topics.get(stream) or f"devices/{self.physical_id}/{stream}"

    def renewed(self, key_label: str, certificate_chain_pem: str) -> DeviceState:
        return replace(self, key_label=key_label, certificate_chain_pem=certificate_chain_pem)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "physical_id": self.physical_id,
            "logical_name": self.logical_name,
            "api_url": self.api_url,
            "key_label": self.key_label,
            "certificate_chain_pem": self.certificate_chain_pem,
            "mqtt_host": self.mqtt_host,
            "mqtt_port": self.mqtt_port,
            "topics": dict(self.topics),
            "policy": dict(self.policy),
        }

    @classmethod
    def from_json(cls, data: object) -> DeviceState:
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise StateFileInvalid(f"the state file is not version {STATE_VERSION}")
        try:
            state = cls(
                physical_id=PhysicalId(_text(data, "physical_id")),
                logical_name=None if data["logical_name"] is None
                else LogicalName(_text(data, "logical_name")),
                api_url=_text(data, "api_url"),
                key_label=_text(data, "key_label"),
                certificate_chain_pem=_text(data, "certificate_chain_pem"),
                mqtt_host=_text(data, "mqtt_host"),
                mqtt_port=int(data["mqtt_port"]),
                topics={str(k): str(v) for k, v in dict(data["topics"]).items()},
                policy=dict(data["policy"]),
            )
            state.certificate  # noqa: B018 - refuse a state whose certificate does not parse
        except (KeyError, TypeError, ValueError) as exc:
            raise StateFileInvalid(f"the state file is malformed: {type(exc).__name__}") from exc
        return state


def _text(data: dict[str, Any], name: str) -> str:
    value = data[name]
    if not isinstance(value, str) or not value:
        raise ValueError(name)
    return value


def load_state(data_dir: Path) -> DeviceState:
    """The state in `data_dir`; `NotProvisioned` if there is none."""
    path = Path(data_dir) / STATE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotProvisioned(f"no device state in {data_dir}: provision first") from None
    try:
        return DeviceState.from_json(json.loads(text))
    except json.JSONDecodeError as exc:
        raise StateFileInvalid("the state file is not JSON") from exc


def has_state(data_dir: Path) -> bool:
    return (Path(data_dir) / STATE_FILE).exists()


def save_state(data_dir: Path, state: DeviceState) -> None:
    """Write `state` atomically, readable by this user only."""
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = directory / STATE_FILE
    temporary = directory / f".{STATE_FILE}.tmp"
    body = json.dumps(state.to_json(), indent=2, sort_keys=True).encode()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, target)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

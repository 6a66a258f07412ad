"""The simulator's tests run against one real `devicetrust serve` (the device client's
platform fixture), with a symmetric-key group whose pool is a plant's arm names."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator

import pytest

from devicetrust.device.simulator import FleetUnit
from tests.device.client.platform import Platform, running_platform

POOL = "plant-1-line-01-arm-{001..999}"


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    yield from running_platform(tmp_path_factory.mktemp("platform"))


def fleet_units(platform: Platform, count: int) -> list[FleetUnit]:
    """`count` new units of the plant's group, each with the key the factory flashes
    (HMAC-SHA256(group key, physical id))."""
    if "symmetric-key" not in platform.groups:
        created = platform.api("POST", "/v1/enrollments/groups", {
            "name": "plant-1", "attestation": "symmetric-key",
            "allocation": {"policy": "pool", "pool_pattern": POOL},
        })
        platform.groups["symmetric-key"] = base64.urlsafe_b64decode(created["key"] + "==")
    group_key = platform.groups["symmetric-key"]
    units = []
    for _ in range(count):
        pid = platform.unit()
        units.append(FleetUnit(pid, bytearray(hmac.digest(group_key, pid.encode(),
                                                          hashlib.sha256))))
    return units

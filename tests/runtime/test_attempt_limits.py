"""`[provisioning] attempt_burst` / `attempt_refill_per_minute` set the token buckets that
refused attempts and challenges spend, per source address and per claimed unit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devicetrust.domain.errors import DeviceTrustError
from devicetrust.provisioning import RateLimited
from devicetrust.runtime import Platform, Settings
from devicetrust.vault import Vault


@pytest.mark.parametrize("burst", [1, 3])
def test_the_configured_burst_is_what_a_source_may_spend(tmp_path: Path, burst: int) -> None:
    settings = Settings.model_validate(
        {"data_dir": tmp_path, "provisioning": {"attempt_burst": burst}}
    )
    platform = Platform(settings, vault=Vault.from_key(os.urandom(32)))
    try:
        for n in range(burst):  # each claims another unknown unit: only the source counts
            with pytest.raises(DeviceTrustError) as refused:
                platform.provisioning.challenge(f"not-a-unit-{n}", "x509", source="10.1.1.1")
            assert not isinstance(refused.value, RateLimited)
        with pytest.raises(RateLimited):
            platform.provisioning.challenge("not-a-unit-x", "x509", source="10.1.1.1")
        # another source is not affected
        with pytest.raises(DeviceTrustError) as other:
            platform.provisioning.challenge("not-a-unit-y", "x509", source="10.1.1.2")
        assert not isinstance(other.value, RateLimited)
    finally:
        platform.close()


def test_out_of_range_limits_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Settings.model_validate({"data_dir": tmp_path, "provisioning": {"attempt_burst": 0}})

"""The embedded data plane as `devicetrust serve` runs it, for tests: a platform with a CA
hierarchy and its gateway on a free loopback port, and the plane started on it. Fixtures
delegate here (`yield from`), so each module keeps its own fixture names and scopes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from devicetrust.domain.clock import Clock
from devicetrust.runtime import Platform, Settings
from devicetrust.runtime.data_plane import EmbeddedDataPlane
from devicetrust.vault import Vault
from tests.conftest import free_port

ACTOR = "operator:test"


def gateway_platform(tmp_path: Path, *, clock: Clock | None = None,
                     **gateway: Any) -> Iterator[Platform]:
    """A platform in `tmp_path/data` with its CA, the gateway on a free port (`gateway`:
    more `[gateway]` settings); closed afterwards."""
    settings = Settings.model_validate({
        "data_dir": tmp_path / "data",
        "gateway": {"port": free_port(), "public_host": "localhost", **gateway},
    })
    extra: dict[str, Any] = {} if clock is None else {"clock": clock}
    made = Platform(settings, vault=Vault.from_key(os.urandom(32)), **extra)
    made.pki.init_hierarchy(actor=ACTOR)
    yield made
    made.close()


def running_plane(platform: Platform) -> Iterator[EmbeddedDataPlane]:
    """The platform's data plane, started (it must start), stopped afterwards."""
    running = EmbeddedDataPlane(platform)
    assert running.start()
    yield running
    running.stop()

"""`devicetrust demo` in an empty folder without any configuration (no KEK: a throw-away one),
then the folder explored with the CLI as docs/demo.md shows; a second run there, whose KEK
is gone, stops with a clear error and changes nothing.

What each step did is checked from the database in tests/integration/test_demo.py.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from devicetrust.cli.demo_setup import demo_settings
from devicetrust.runtime import Settings
from devicetrust.vault import generate_kek_text

if TYPE_CHECKING:
    from tests.cli.conftest import Cli

NAME = "line-03-left-welding-12"


@pytest.fixture(scope="module")
def after_demo(tmp_path_factory: pytest.TempPathFactory, make_cli: Callable[[Path], Cli]) -> Cli:
    """One demo run without a KEK, shared by the tests that only read what it left; swtpm off
    the PATH, so its units' keystores are sealed by device secrets (the fallback)."""
    cli = make_cli(tmp_path_factory.mktemp("demo"))
    done = cli.script("demo", PATH=str(Path(sys.executable).parent))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return cli


def test_the_folder_can_be_explored_with_the_cli(after_demo: Cli) -> None:
    cli = after_demo
    history = cli.json("identity", "history", NAME)["bindings"]
    assert len(history) == 2
    old, new = history
    assert old["ended_at"] == new["started_at"]
    diagnostics = cli.json("data", "diagnostics", NAME, "--since", "1h")
    senders = {m["physical_id"] for m in diagnostics["items"]}
    assert senders == {old["physical_id"], new["physical_id"]}


def test_without_swtpm_the_keystores_are_sealed_by_device_secrets(after_demo: Cli) -> None:
    stores = list((after_demo.data_dir / "devices").glob("*/keystore.json"))
    assert len(stores) == 3
    assert {json.loads(p.read_text())["store_key"]["kind"] for p in stores} == {"scrypt"}


def test_without_a_kek_the_demo_webhook_does_not_outlive_the_run(after_demo: Cli) -> None:
    # Its secret was sealed under the throw-away KEK; listing needs a KEK, any KEK.
    listed = after_demo.json("webhook", "list", DEVICETRUST_KEK=generate_kek_text())
    assert listed["webhooks"] == []


def test_a_second_run_without_the_first_kek_stops_and_changes_nothing(after_demo: Cli) -> None:
    cli = after_demo
    before = cli.dump()
    done = cli.script("demo")
    assert done.returncode != 0
    assert "[demo.kek_missing]" in done.stderr
    assert "Traceback" not in done.stderr
    assert cli.dump() == before


def test_demo_settings_use_loopback_and_keep_what_certificates_name() -> None:
    configured = Settings.model_validate(
        {
            "server": {"host": "0.0.0.0", "port": 9443},
            "gateway": {"host": "0.0.0.0", "public_host": "mqtt.example", "enabled": False},
        }
    )
    settings = demo_settings(configured, gateway_port=41883)
    assert settings.pki_public_url == "http://0.0.0.0:9443"  # as a later `serve` publishes it
    assert (settings.server.host, settings.server.tls_cert) == ("127.0.0.1", None)
    gateway = settings.gateway
    assert (gateway.enabled, gateway.host, gateway.port) == (True, "127.0.0.1", 41883)
    assert (gateway.public_host, gateway.public_port) == ("127.0.0.1", None)

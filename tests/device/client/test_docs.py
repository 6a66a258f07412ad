"""The examples of docs/device-sdk.md run as written: the factory step, the synchronous
quick start and the asyncio quick start, each in a fresh interpreter against the real
server, with only the environment variables the document names."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.device.client.devices import symmetric_device_key
from tests.device.client.platform import Platform

DOC = Path(__file__).resolve().parents[3] / "docs" / "device-sdk.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def _run(code: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_quick_starts_work_as_written(platform: Platform, tmp_path: Path) -> None:
    factory, quick_sync, quick_async = _blocks()[:3]
    pid, device_key = symmetric_device_key(platform)
    env = {
        "DEVICE_DIR": str(tmp_path / "device"), "DEVICE_SECRET": os.urandom(32).hex(),
        "DEVICE_KEY": base64.urlsafe_b64encode(device_key).rstrip(b"=").decode(),
        "API_URL": platform.url, "PHYSICAL_ID": pid, "CA_BUNDLE": str(platform.ca_bundle),
    }
    _run(factory, env)
    out = _run(quick_sync, env)
    name = re.search(r"I am (\S+) on", out).group(1)  # type: ignore[union-attr]
    stored = platform.api("GET", f"/v1/data/diagnostics/{name}")["items"]
    assert [m["payload"] for m in stored] == [{"parts_per_hour": 41}]

    platform.api("POST", f"/v1/feedback/{name}", {"payload": {"speed": 0.8}})  # while offline
    assert "feedback: {'speed': 0.8}" in _run(quick_async, env)


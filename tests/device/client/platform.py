"""A real `devicetrust serve` for the device client's tests: HTTPS API (self-signed server
certificate, client certificates optional for EST re-enrollment), the embedded MQTT gateway
on a free port, SQLite in a temporary directory; and an operator talking to its REST API."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devicetrust.vault import generate_kek_text
from tests.cli.conftest import clean_env
from tests.conftest import free_port
from tests.software_keys import CLI_ARGS as SOFTWARE_KEYS

START_TIMEOUT = 60.0


@dataclass
class Platform:
    url: str
    ca_bundle: Path
    token: str
    workdir: Path
    env: dict[str, str]
    groups: dict[str, bytes] = field(default_factory=dict)
    server: ServeProcess | None = None

    def api(self, method: str, path: str, body: object | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        try:
            with urllib.request.urlopen(req, context=context, timeout=30) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()!r}") from None

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "devicetrust.cli.main", *args], cwd=self.workdir,
            env=self.env, capture_output=True, text=True, timeout=120, check=False,
        )
        assert done.returncode == 0, f"{args}: {done.stderr}"
        return done.stdout

    def unit(self) -> str:
        return str(self.api("POST", "/v1/physical-identities", {"model": "arm-r7"})["physical_id"])

    def manufacturing_ca(self) -> str:
        cas = self.api("GET", "/v1/pki/cas")
        items = cas["items"] if isinstance(cas, dict) else cas
        found = [c["ca_id"] for c in items if c["role"] == "manufacturing"]
        return str(found[-1])


def _sh(command: str, cwd: Path) -> None:
    subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=cwd, check=True,
                   capture_output=True, timeout=60)


class ServeProcess:
    """`devicetrust serve` on `port` in a platform's work directory: `start()` (waits until
    healthy), `stop()` (SIGTERM), `kill()` (SIGKILL, for fault tests). Its log goes to
    `serve.log` there: a pipe nobody reads would fill up when the server logs a lot (during
    a database outage) and block it."""

    def __init__(self, workdir: Path, env: dict[str, str], url: str, port: int,
                 cafile: Path) -> None:
        self.workdir, self.env, self.url, self.port, self.cafile = workdir, env, url, port, cafile
        self.log = workdir / "serve.log"
        self.restarts = -1
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "devicetrust.cli.main", "serve", "--port", str(self.port)],
                cwd=self.workdir, env=self.env, stdout=subprocess.DEVNULL, stderr=log,
            )
        self._wait_healthy(self._process)
        self.restarts += 1

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        assert self._process is not None
        self._process.kill()
        self._process.wait()

    def _wait_healthy(self, server: subprocess.Popen[bytes]) -> None:
        context = ssl.create_default_context(cafile=str(self.cafile))
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if server.poll() is not None:
                raise AssertionError(self.log.read_text(errors="replace")[-4000:])
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", context=context, timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise AssertionError("devicetrust serve did not start") from None
                time.sleep(0.2)


def running_platform(workdir: Path) -> Iterator[Platform]:
    """Set up a data directory with a CA, start `devicetrust serve`, yield, stop it."""
    _sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
        "-keyout server.key -out server.pem -subj /CN=127.0.0.1 "
        "-addext subjectAltName=IP:127.0.0.1 2>/dev/null",
        workdir,
    )
    port = free_port()
    env = {
        **clean_env(),
        "DEVICETRUST_KEK": generate_kek_text(),
        "DEVICETRUST_SERVER_TLS_CERT": str(workdir / "server.pem"),
        "DEVICETRUST_SERVER_TLS_KEY": str(workdir / "server.key"),
        "DEVICETRUST_SERVER_TLS_CLIENT_CERTS": "optional",
        "DEVICETRUST_PKI_PUBLIC_URL": f"https://127.0.0.1:{port}",
        "DEVICETRUST_GATEWAY_PUBLIC_HOST": "127.0.0.1",
        "DEVICETRUST_LOGGING_LEVEL": "WARNING",
    }
    platform = Platform(f"https://127.0.0.1:{port}", workdir / "factory-ca.pem", "", workdir, env)
    init = json.loads(platform.cli("init", "--json"))
    platform.token = init["api_key"]["token"]
    platform.cli("ca", "init")
    platform.cli(*SOFTWARE_KEYS)  # its units keep their keys in software keystores
    chain = platform.cli("ca", "chain")
    platform.ca_bundle.write_text((workdir / "server.pem").read_text() + chain)
    platform.server = ServeProcess(workdir, env, platform.url, port, platform.ca_bundle)
    try:
        platform.server.start()
        yield platform
    finally:
        platform.server.stop()

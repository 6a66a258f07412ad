"""A real `devicetrust serve` that a test can SIGKILL and start again on the same ports and
data directory; the set-up (data directory, CA, API key, the server process) is
`tests.device.client.platform.running_platform`'s, reused as is."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.device.client.platform import Platform, ServeProcess, running_platform


@dataclass
class Serve:
    """A platform and its server, which a test can `kill()` and `start()` again on the same
    ports and data directory (`restarts` counts the starts after the first)."""

    platform: Platform
    server: ServeProcess

    def kill(self) -> None:
        self.server.kill()

    def start(self) -> None:
        self.server.start()

    @property
    def restarts(self) -> int:
        return self.server.restarts


@contextmanager
def killable_platform(workdir: Path, database_url: str | None = None) -> Iterator[Serve]:
    """`running_platform` in `workdir` (on `database_url` when given, else SQLite in the
    data directory), as a `Serve` that can be killed and restarted."""
    if database_url is not None:
        (workdir / "devicetrust.toml").write_text(f'[database]\nurl = "{database_url}"\n')
    with contextmanager(running_platform)(workdir) as platform:
        assert platform.server is not None
        yield Serve(platform, platform.server)

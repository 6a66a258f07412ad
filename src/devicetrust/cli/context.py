"""Per-invocation state of the CLI: the config path, the settings and the `Platform`.

The platform is built lazily (so `--help` never opens a database) and closed when the
command ends. Every change the CLI makes is recorded with the actor `cli:<os user>`.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path

import typer

from devicetrust.runtime import Platform, Settings, configure_logging, load_settings
from devicetrust.vault import Vault


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers): fall back to the uid
        return f"uid{os.getuid()}"


@dataclass
class CliState:
    config_path: Path | None = None
    actor: str = field(default_factory=lambda: f"cli:{os_user()}")
    _settings: Settings | None = None
    _platform: Platform | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            _quiet_logging(self._settings)
        return self._settings

    def listen_on(self, host: str | None, port: int | None) -> Settings:
        """The settings with `serve --host/--port` applied, so everything derived from the
        listening address (the device JWT audience, the HMAC token resource) follows them.
        Call before `platform()`."""
        settings = self.settings()
        server = settings.server.model_copy(
            update={k: v for k, v in (("host", host), ("port", port)) if v is not None}
        )
        self._settings = settings.model_copy(update={"server": server})
        return self._settings

    def platform(self, *, vault: Vault | None = None) -> Platform:
        """The platform for this command; `vault` overrides the configured KEK (demo, init)."""
        if self._platform is None:
            self._platform = Platform(self.settings(), vault=vault)
        return self._platform

    def close(self) -> None:
        if self._platform is not None:
            self._platform.close()
            self._platform = None


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):  # invoked without the root callback (tests, embedding)
        obj = CliState()
        ctx.find_root().obj = obj
        ctx.find_root().call_on_close(obj.close)
    return obj


def _quiet_logging(settings: Settings) -> None:
    """Interactive commands log warnings only, as text, unless the config asks otherwise."""
    chosen = settings.logging.model_fields_set
    level = settings.logging.level if "level" in chosen else "WARNING"
    fmt = settings.logging.format if "format" in chosen else "text"
    configure_logging(level, fmt)


def database_location(settings: Settings) -> str:
    """Where the data lives, for people (a PostgreSQL URL may hold a password: not shown)."""
    if settings.database.url:
        return "the configured database (DEVICETRUST_DATABASE_URL)"
    return str((settings.data_dir / "devicetrust.db").resolve())

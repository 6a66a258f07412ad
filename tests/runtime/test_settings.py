"""Configuration: TOML file plus DEVICETRUST_* environment overrides; bad values refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from devicetrust.domain.errors import ConfigurationError
from devicetrust.runtime import load_settings


def test_defaults_without_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings.data_dir == Path(".devicetrust")
    assert settings.database_url.endswith("/.devicetrust/devicetrust.db")
    assert settings.database_url.startswith("sqlite")


def test_file_then_env_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "dt.toml"
    cfg.write_text(
        'data_dir = "/srv/dt"\n[server]\nport = 9000\nhost = "0.0.0.0"\n'
        "[identity]\nname_grace_days = 2\n"
    )
    settings = load_settings(
        cfg,
        env={
            "DEVICETRUST_SERVER_PORT": "9443",
            "DEVICETRUST_DATABASE_URL": "postgresql://dt@db/dt",
        },
    )
    assert settings.data_dir == Path("/srv/dt")
    assert settings.server.port == 9443 and settings.server.host == "0.0.0.0"
    assert settings.database_url == "postgresql://dt@db/dt"
    assert settings.identity.name_grace.days == 2


def test_config_path_from_env(tmp_path: Path) -> None:
    cfg = tmp_path / "x.toml"
    cfg.write_text("[logging]\nformat = 'text'\n")
    assert load_settings(env={"DEVICETRUST_CONFIG": str(cfg)}).logging.format == "text"


@pytest.mark.parametrize(
    ("content", "env", "code"),
    [
        ("[server]\nport = 70000\n", {}, "config.invalid"),
        ("[server]\nprot = 1\n", {}, "config.invalid"),
        ("this is = not toml [", {}, "config.file_invalid"),
        ("", {"DEVICETRUST_SERVER_PORT": "eighty"}, "config.invalid"),
        ("", {"DEVICETRUST_LOGGING_LEVEL": "LOUD"}, "config.invalid"),
    ],
)
def test_bad_config_is_refused(
    tmp_path: Path, content: str, env: dict[str, str], code: str
) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(content)
    with pytest.raises(ConfigurationError) as err:
        load_settings(cfg, env=env)
    assert err.value.code == code


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as err:
        load_settings(tmp_path / "nope.toml", env={})
    assert err.value.code == "config.file_missing"

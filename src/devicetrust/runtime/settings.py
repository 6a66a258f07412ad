"""Configuration: a TOML file plus `DEVICETRUST_*` environment variables (env wins).

Lookup of the file: `--config PATH`, else `$DEVICETRUST_CONFIG`, else `./devicetrust.toml`
if it exists; no file is fine (embedded defaults). Environment names follow the file:
top-level `data_dir` is `DEVICETRUST_DATA_DIR`; `[database] url` is
`DEVICETRUST_DATABASE_URL`; `[server] port` is `DEVICETRUST_SERVER_PORT`, and so on.

Secrets never come from the config file: the key-encryption key is read from
`DEVICETRUST_KEK` or from the file named by `kek_file` (e.g. a systemd credential).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from devicetrust.domain.errors import ConfigurationError

ENV_PREFIX = "DEVICETRUST_"
DEFAULT_FILE = Path("devicetrust.toml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: str | None = None  # None: SQLite file in the data directory
    pool_size: int = Field(default=10, ge=1, le=200)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    public_url: str | None = None


class IdentitySettings(_Section):
    name_grace_days: float = Field(default=30, ge=0, le=3650)

    @property
    def name_grace(self) -> timedelta:
        return timedelta(days=self.name_grace_days)


class WebhookSettings(_Section):
    max_attempts: int = Field(default=8, ge=1, le=50)
    base_backoff_seconds: float = Field(default=2.0, gt=0, le=3600)
    max_backoff_seconds: float = Field(default=3600.0, gt=0, le=86400)
    interval_seconds: float = Field(default=1.0, gt=0, le=3600)
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)


class PkiSettings(_Section):
    # Base URL written into certificates (CRL distribution point, OCSP, CA issuers);
    # default: http://<server.host>:<server.port>.
    public_url: str | None = None
    algorithm: Literal["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-3072"] = "ecdsa-p256"
    device_cert_hours: float = Field(default=24, gt=0, le=24 * 90)
    # How CA key files are encrypted: by the platform KEK, or by an operator passphrase
    # read from DEVICETRUST_CA_PASSPHRASE (never from this file).
    key_protection: Literal["kek", "passphrase"] = "kek"
    key_dir: Path | None = None  # default: <data_dir>/ca
    pkcs11_module: Path | None = None  # e.g. /usr/lib/softhsm/libsofthsm2.so
    pkcs11_token: str | None = None
    pkcs11_pin_env: str = "DEVICETRUST_HSM_PIN"
    autorevoke_interval_seconds: float = Field(default=1.0, gt=0, le=3600)
    crl_refresh_interval_seconds: float = Field(default=60.0, gt=0, le=86400)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"


class Settings(_Section):
    data_dir: Path = Path(".devicetrust")
    kek_file: Path | None = None
    database: DatabaseSettings = DatabaseSettings()
    server: ServerSettings = ServerSettings()
    identity: IdentitySettings = IdentitySettings()
    webhooks: WebhookSettings = WebhookSettings()
    pki: PkiSettings = PkiSettings()
    logging: LoggingSettings = LoggingSettings()

    @property
    def pki_public_url(self) -> str:
        return self.pki.public_url or f"http://{self.server.host}:{self.server.port}"

    @property
    def pki_key_dir(self) -> Path:
        return self.pki.key_dir or self.data_dir / "ca"

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite+pysqlite:///{(self.data_dir / 'devicetrust.db').resolve()}"


_SECTIONS = {
    name: field.annotation
    for name, field in Settings.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, _Section)
}


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, model in Settings.model_fields.items():
        if key in _SECTIONS:
            section_model = _SECTIONS[key]
            assert section_model is not None
            for sub in section_model.model_fields:
                name = f"{ENV_PREFIX}{key}_{sub}".upper()
                if name in env:
                    out.setdefault(key, {})[sub] = env[name]
        else:
            del model
            name = f"{ENV_PREFIX}{key}".upper()
            if name in env:
                out[key] = env[name]
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the config file (if any) and apply environment overrides; refuse bad values."""
    env = os.environ if env is None else env
    if path is None and env.get(f"{ENV_PREFIX}CONFIG"):
        path = Path(env[f"{ENV_PREFIX}CONFIG"])
    if path is None and DEFAULT_FILE.is_file():
        path = DEFAULT_FILE
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigurationError(
                "config.file_missing", f"config file {path} not found"
            ) from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError("config.file_invalid", f"{path}: {exc}") from exc
    try:
        return Settings.model_validate(_merge(data, _env_overrides(env)))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError("config.invalid", f"invalid configuration: {problems}") from exc

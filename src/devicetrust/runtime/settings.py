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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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
    # HTTPS: the server's certificate chain and its (unencrypted) key, PEM; both or neither.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # "optional": ask every TLS client for a certificate of this platform's CA (one without
    # still connects and authenticates otherwise); EST simplereenroll accepts it (RFC 7030
    # §3.3.2). Needs tls_cert, and a CA (`devicetrust ca init`) when serving.
    tls_client_certs: Literal["none", "optional"] = "none"

    @model_validator(mode="after")
    def _tls_complete(self) -> ServerSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.tls_client_certs != "none" and self.tls_cert is None:
            raise ValueError("tls_client_certs needs tls_cert and tls_key (HTTPS)")
        return self


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


class GatewaySettings(_Section):
    """The MQTT data plane (MQTT 5 / 3.1.1 over TLS). `host`/`port` are where the gateway
    listens; `public_host`/`public_port` what a provisioned device is told to connect to
    (default: the host of `pki.public_url`, which devices already reach for CRLs and OCSP,
    and `port`). Topics are `<topic_prefix>/<physical id>/{diagnostics,telemetry,feedback}`."""

    host: str = "127.0.0.1"
    port: int = Field(default=8883, ge=1, le=65535)
    public_host: str | None = Field(default=None, min_length=1, max_length=253)
    public_port: int | None = Field(default=None, ge=1, le=65535)
    # MQTT topic levels without wildcards (+ #), `$` (reserved) or empty levels.
    topic_prefix: str = Field(
        default="devices", max_length=64, pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$"
    )
    # `serve` runs the embedded gateway (once a CA exists); off when Mosquitto is the broker.
    enabled: bool = True
    # What HMAC tokens (`sr`) and JWTs (`aud`) must name; default: the host devices are told.
    token_audience: str | None = Field(default=None, min_length=1, max_length=253)
    # How often connected devices' standing is re-read (live revocation), in seconds.
    revocation_check_seconds: float = Field(default=0.25, gt=0, le=60)
    # Per-unit message-rate quota (token bucket): PUBLISHes per second on average and at
    # once; beyond it PUBACK 0x97, then DISCONNECT 0x96 (3.1.1: disconnected), audited.
    message_rate: float = Field(default=1000.0, gt=0, le=1_000_000)
    message_burst: int = Field(default=2000, ge=1, le=10_000_000)
    # The gateway's server certificate lives this long and is renewed at 2/3 of it.
    server_cert_hours: float = Field(default=24.0, gt=0, le=24 * 397)


class ProvisioningSettings(_Section):
    # PEM file or directory of PEM files: the TPM manufacturers' EK CA certificates trusted as
    # anchors. When set, an enrolled EK certificate must chain to one of them at attestation.
    tpm_ek_roots: Path | None = None
    # Intermediate EK CAs paths may use (PEM file or directory); never anchors themselves.
    tpm_ek_intermediates: Path | None = None
    # Refuse TPM attestation for an enrollment that holds an EK public key but no certificate
    # (needs tpm_ek_roots). Off: the factory's reading of the TPM is trusted on its word.
    tpm_require_ek_certificate: bool = False
    # Failed attempts and challenges spend tokens of two buckets each: one per source address
    # and one per claimed unit. A production line behind one address may need more.
    attempt_burst: int = Field(default=10, ge=1, le=1_000_000)
    attempt_refill_per_minute: float = Field(default=10.0, gt=0, le=1_000_000)


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
    gateway: GatewaySettings = GatewaySettings()
    provisioning: ProvisioningSettings = ProvisioningSettings()
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

"""What `devicetrust demo` runs on: the configured data directory and database, the configured
key-encryption key (or a throw-away one), a CA, and free loopback ports.

The demo's server listens on 127.0.0.1 only, on ports free now (never the configured 8080
and 8883, which a real `devicetrust serve` may hold); provisioned devices are told that
gateway address. Certificates keep naming the configured `pki.public_url`, so what the
demo leaves behind is served by a later `devicetrust serve` as if it had issued it.

Without a configured KEK the demo uses one drawn from the OS CSPRNG for this run only,
never written or printed: a first run works anywhere; the CA it creates cannot be opened
by a later run, which then stops with a clear error before changing anything (configure
`DEVICETRUST_KEK` to run the demo again in the same folder).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from devicetrust.domain.errors import ConfigurationError
from devicetrust.runtime import Platform, Settings, load_vault
from devicetrust.vault import KEK_SIZE, Vault

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class DemoPlatform:
    platform: Platform
    ephemeral_kek: bool
    created_ca: bool


def open_demo(settings: Settings, *, actor: str) -> DemoPlatform:
    """The platform the demo runs on, with a CA (created now when there is none)."""
    vault, ephemeral = _vault(settings)
    platform = Platform(demo_settings(settings, gateway_port=free_port()), vault=vault)
    try:
        created = False
        if not platform.pki.list_cas():
            platform.pki.init_hierarchy(actor=actor)
            created = True
        elif ephemeral:
            raise ConfigurationError(
                "demo.kek_missing",
                "this data directory has a CA from an earlier run whose key-encryption key "
                "is gone (no DEVICETRUST_KEK was set); run the demo in an empty folder, or "
                "set DEVICETRUST_KEK (`devicetrust init` prints one) before the first run",
            )
    except BaseException:
        platform.close()
        raise
    return DemoPlatform(platform, ephemeral, created)


def demo_settings(settings: Settings, *, gateway_port: int) -> Settings:
    """`settings` with the server and gateway on loopback (the gateway on `gateway_port`,
    which devices are told), certificates still naming the configured public URL."""
    return settings.model_copy(
        update={
            # HTTPS with a one-time certificate of the platform's CA, which the units trust
            "server": settings.server.model_copy(
                update={
                    "host": LOOPBACK,
                    "tls_cert": None,
                    "tls_key": None,
                    "tls_client_certs": "none",
                }
            ),
            "pki": settings.pki.model_copy(update={"public_url": settings.pki_public_url}),
            "gateway": settings.gateway.model_copy(
                update={
                    "enabled": True,
                    "host": LOOPBACK,
                    "port": gateway_port,
                    "public_host": LOOPBACK,
                    "public_port": None,
                    "token_audience": settings.gateway.token_audience or LOOPBACK,
                }
            ),
        }
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _vault(settings: Settings) -> tuple[Vault, bool]:
    """The configured KEK, or a throw-away one for this run only (never written anywhere)."""
    try:
        return load_vault(settings), False
    except ConfigurationError as exc:
        if exc.code != "config.kek_missing":
            raise
    key = bytearray(os.urandom(KEK_SIZE))
    try:
        return Vault.from_key(key), True
    finally:
        key[:] = bytes(KEK_SIZE)

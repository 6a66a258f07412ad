"""The gateway tests' fixtures (`gateway_fixtures.py`) for every module of this folder: a
SQLite database and the system clock (the gateway runs in real time), the CA's TLS files,
devices with certificates, device authentication, the message store, a running gateway and
the paho clients a test opens. A module overrides any of them by defining its own."""

from tests.gateway.gateway_fixtures import (
    auth,
    clock,
    db,
    gateway,
    gateway_config,
    hooks,
    make_device,
    message_store,
    paho_devices,
    sink,
    tls,
)

__all__ = [
    "auth",
    "clock",
    "db",
    "gateway",
    "gateway_config",
    "hooks",
    "make_device",
    "message_store",
    "paho_devices",
    "sink",
    "tls",
]

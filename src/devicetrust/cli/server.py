"""`devicetrust init` and `devicetrust serve`: setting up a data directory and running the server.

`init` hands out the bootstrap admin API key and, when none is configured, a fresh
key-encryption key, each printed once and never written to disk: storing the KEK next to the
secrets it protects would defeat it.

`serve` runs the API (with the CA's public CRL, CA-certificate and OCSP endpoints) and, in
background threads, the webhook dispatcher and the CA's upkeep: auto-revocation from identity
events and the periodic re-signing of CRLs and OCSP signers, both idle until a CA exists.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Annotated, Any

import typer

from devicetrust.auth import ApiKey, Scope
from devicetrust.cli import output
from devicetrust.cli import workers as workers_mod
from devicetrust.cli.apikey import show_token
from devicetrust.cli.context import database_location, state
from devicetrust.cli.embedded_server import BackgroundWork, tls_options
from devicetrust.domain.errors import ConfigurationError
from devicetrust.runtime import Platform, Settings, configure_logging, load_vault
from devicetrust.vault import KEK_ENV_VAR, Vault, generate_kek_text

BOOTSTRAP_KEY_NAME = "bootstrap-admin"
__all__ = ["init", "serve", "tls_options"]


def init(ctx: typer.Context, as_json: output.JsonFlag = False) -> None:
    """Create the data directory and database; print the bootstrap admin API key once."""
    cli = state(ctx)
    settings = cli.settings()
    vault = _configured_vault(settings)
    platform = cli.platform(vault=vault)
    admins = [
        key for key in platform.api_keys.list(include_revoked=False) if Scope.ADMIN in key.scopes
    ]
    where = database_location(settings)
    if admins:
        _already_initialised(where, admins, kek_configured=vault is not None, as_json=as_json)
        return
    kek_text = generate_kek_text() if vault is None else None
    key, token = platform.api_keys.create(BOOTSTRAP_KEY_NAME, [Scope.ADMIN], actor=cli.actor)
    if as_json:
        output.emit_json(
            {
                "initialised": True,
                "database": where,
                "api_key": {**key.to_json(), "token": token},
                "kek": kek_text,
            }
        )
        return
    output.success(f"devicetrust initialised: {where}")
    show_token(key, token)
    if kek_text is not None:
        output.warn(
            "No key-encryption key was configured; here is a new one. It is shown only now and "
            "is not stored anywhere: keep it in a secret manager and set it for the server:"
        )
        output.out.print(f"export {KEK_ENV_VAR}={kek_text}", markup=False, highlight=False)


def _configured_vault(settings: Settings) -> Vault | None:
    """The configured KEK (checked now, so a malformed one is reported by init), or None."""
    try:
        return load_vault(settings)
    except ConfigurationError as exc:
        if exc.code == "config.kek_missing":
            return None
        raise


def _already_initialised(
    where: str, admins: list[ApiKey], *, kek_configured: bool, as_json: bool
) -> None:
    if as_json:
        output.emit_json(
            {
                "initialised": False,
                "database": where,
                "admin_keys": [key.key_id for key in admins],
                "kek": None,
            }
        )
        return
    output.note(
        f"already initialised ({where}); admin keys: {', '.join(k.key_id for k in admins)}. "
        "Create more with `devicetrust apikey create`."
    )
    if not kek_configured:
        output.warn(
            f"{KEK_ENV_VAR} is not set: use the key printed by the first `devicetrust init` "
            "(secrets stored since then are sealed under it)."
        )


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen address (default: server.host).")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Listen port (default: server.port).")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1, max=64, help="API processes sharing the port (default 1; about one per core)."
        ),
    ] = 1,
) -> None:
    """Run the REST API, the webhook dispatcher and the CA until SIGINT or SIGTERM.

    The CA's public endpoints are served at the URLs written into certificates
    (pki.public_url): CRLs at /pki/crl/<ca-id>.crl, CA certificates at /pki/ca/<ca-id>.crt
    and the OCSP responder (RFC 6960, POST and GET) at /pki/ocsp. Certificates are revoked
    automatically when their unit is suspended, quarantined, replaced or decommissioned, and
    CRLs and OCSP signers are renewed before they lapse. Once a CA exists it also runs the
    MQTT device gateway (TLS 1.3, `[gateway] host:port`, default 127.0.0.1:8883; off with
    `[gateway] enabled = false`), which closes a device's live session within about
    `[gateway] revocation_check_seconds` of its suspension or revocation. With server.tls_cert and
    server.tls_key it serves HTTPS; with server.tls_client_certs = "optional" it also asks
    clients for a certificate of the platform's CA (EST simplereenroll by certificate)."""
    import uvicorn

    from devicetrust.api import create_app

    cli = state(ctx)
    settings = cli.listen_on(host, port)
    configure_logging(settings.logging.level, settings.logging.format)
    _adopt_uvicorn_logs()
    platform = cli.platform()
    platform.vault  # noqa: B018 - refuse to start without a KEK, not at the first webhook
    platform.pki  # noqa: B018 - likewise without the CA key passphrase, when one is set
    if workers > 1:
        _serve_with_workers(
            platform,
            workers,
            settings.server.host,
            settings.server.port,
        )
        return
    config = uvicorn.Config(
        create_app(platform),
        host=settings.server.host,
        port=settings.server.port,
        log_config=None,  # keep devicetrust's structured logging
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=workers_mod.GRACEFUL_SHUTDOWN_SECONDS,
        **tls_options(platform),
    )
    server = uvicorn.Server(config)
    previous = _absorb_signals(server)
    work = _start_background(platform)
    try:
        server.run()  # handles SIGINT/SIGTERM itself: stops accepting, drains, returns
    finally:
        work.stop()
        _restore_signals(previous)
    output.note("devicetrust stopped")


def _start_background(platform: Platform) -> BackgroundWork:
    """The dispatcher, the CA's upkeep and the MQTT device gateway (`[gateway]`), in this
    process only (one copy per server)."""
    work = BackgroundWork(platform).start()
    if work.gateway_started:
        gateway = platform.settings.gateway
        output.note(f"MQTT device gateway (TLS 1.3) on {gateway.host}:{work.plane.port}")
    return work


def _serve_with_workers(platform: Platform, count: int, host: str, port: int) -> None:
    """`serve --workers N` (`cli/workers.py`): N forked API processes on one socket; the
    background work stays here, in one copy."""
    from devicetrust.api import create_app

    options = tls_options(platform)
    sock = workers_mod.listening_socket(host, port)
    platform.db.dispose()  # no database connection may cross the fork
    children = workers_mod.start_workers(count, platform.settings, sock, create_app, options)
    sock.close()  # the workers serve it; this process only supervises
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda signum, frame: stop.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    work = _start_background(platform)
    output.note(f"devicetrust serving on {host}:{port} with {count} API processes")
    try:
        clean = workers_mod.supervise(children, stop)
    finally:
        work.stop()
        _restore_signals(previous)
    if not clean:
        raise ConfigurationError("server.worker_failed", "an API process failed; see the log")
    output.note("devicetrust stopped")


_Handler = Any


def _adopt_uvicorn_logs() -> None:
    """uvicorn's start-up, error and access logs go through devicetrust's handler (same
    format, same stream) instead of uvicorn's own configuration."""
    ours = logging.getLogger("devicetrust")
    for name in ("uvicorn", "uvicorn.access"):
        theirs = logging.getLogger(name)
        theirs.handlers[:] = ours.handlers
        theirs.setLevel(ours.level)
        theirs.propagate = False


def _absorb_signals(server: Any) -> dict[signal.Signals, _Handler]:
    """uvicorn re-raises the signal that stopped it once it has shut down; these handlers
    absorb it so the dispatcher can be stopped and the database closed cleanly (exit 0).
    Before uvicorn installs its own handlers (start-up), they ask it to stop."""

    def _noted(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        server.should_exit = True

    return {sig: signal.signal(sig, _noted) for sig in (signal.SIGINT, signal.SIGTERM)}


def _restore_signals(previous: dict[signal.Signals, _Handler]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)

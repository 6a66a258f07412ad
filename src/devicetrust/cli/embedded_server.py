"""The server of `devicetrust serve`, in pieces another command can run in this process.

    work = BackgroundWork(platform).start()     # webhook dispatcher, CA upkeep, MQTT gateway
    ...                                         # serve: uvicorn in the main thread
    work.stop()

    with EmbeddedServer(platform) as server:    # the demo: the API (HTTPS) in a thread too
        server.url, server.gateway_port, server.ca_pem

`BackgroundWork` is the one copy of background work a server runs (also under `serve
--workers N`): the webhook dispatcher, the CA's upkeep (auto-revocation from identity
events, CRL and OCSP-signer renewal, purges of expired challenges and token ids) and the
embedded data plane (`runtime.data_plane`). `EmbeddedServer` adds the FastAPI app served
by uvicorn on a loopback socket it binds itself, in a thread, over HTTPS: with
`[server] tls_cert`/`tls_key` when configured (`tls_options`), else with a one-time
server certificate from the platform's CA whose key is made in memory and reaches uvicorn
only as a file encrypted with a random one-time password, deleted once loaded -- the same
rule as the gateway's certificate: no clear key on disk.

Never installs signal handlers (uvicorn installs none off the main thread) and never
leaves a thread running after `stop()`.
"""

from __future__ import annotations

import logging
import secrets
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.exc import OperationalError

from devicetrust.cli import workers as workers_mod
from devicetrust.domain.errors import ConfigurationError, DeviceTrustError
from devicetrust.pki import CaRole, PkiService, Profile
from devicetrust.runtime import Platform
from devicetrust.runtime.data_plane import EmbeddedDataPlane

__all__ = ["BackgroundWork", "EmbeddedServer", "tls_options"]

SHUTDOWN_GRACE_SECONDS = 30.0
START_TIMEOUT_SECONDS = 30.0
ACTOR = "system:server"
_log = logging.getLogger(__name__)


class BackgroundWork:
    """The background work of one server: dispatcher, CA upkeep and the data plane."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self._stop = threading.Event()
        self._threads = [_dispatcher(platform, self._stop), *_pki_upkeep(platform, self._stop)]
        self.plane = EmbeddedDataPlane(platform)
        self.gateway_started = False

    def start(self) -> Self:
        for thread in self._threads:
            thread.start()
        self.gateway_started = self.plane.start()
        return self

    def stop(self) -> None:
        self.plane.stop()
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=SHUTDOWN_GRACE_SECONDS)


class EmbeddedServer:
    """The API over HTTPS and the background work, in threads of this process."""

    def __init__(self, platform: Platform, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._platform = platform
        self._host = host
        self.work = BackgroundWork(platform)
        self._sock = workers_mod.listening_socket(host, port)
        self.port: int = self._sock.getsockname()[1]
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"https://{self._host}:{self.port}"

    @property
    def ca_pem(self) -> str:
        """The issuing and root CA certificates: what clients verify both servers with
        (when the API's certificate is the one-time one, not `[server] tls_cert`)."""
        return self._platform.pki.chain_pem(CaRole.ISSUING)

    @property
    def gateway_port(self) -> int | None:
        return self.work.plane.port

    def start(self) -> Self:
        """Start everything; returns once the API accepts connections (else stops what it
        started and raises)."""
        try:
            self.work.start()
            self._serve()
        except BaseException:
            self.stop()
            raise
        return self

    def _serve(self) -> None:
        import uvicorn

        from devicetrust.api import create_app

        configured = tls_options(self._platform)
        with _one_time_tls(self._platform, self._host, configured) as options:
            config = uvicorn.Config(
                create_app(self._platform),
                log_config=None,  # keep devicetrust's logging
                server_header=False,
                lifespan="on",
                timeout_graceful_shutdown=workers_mod.GRACEFUL_SHUTDOWN_SECONDS,
                **options,
            )
            config.load()  # reads the key file now, while it exists
        self._server = server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self._sock]}, name="api-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigurationError("server.start_failed", "the API server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=SHUTDOWN_GRACE_SECONDS)
            self._thread = None
        self._sock.close()
        self.work.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def _one_time_tls(
    platform: Platform, host: str, configured: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """uvicorn's TLS options: the configured ones, else a server certificate issued now for
    `host`, `localhost` and 127.0.0.1, its key in a temporary file encrypted with a random
    password (removed on exit, once uvicorn has loaded it)."""
    if "ssl_certfile" in configured:
        yield configured
        return
    from devicetrust.api.tls import TlsH11Protocol

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    names = sorted({"localhost", host} - {"127.0.0.1"})
    pki = platform.pki
    issued = pki.issue_from_csr(
        csr, None, Profile.SERVER, actor=ACTOR, dns_names=names, ip_addresses=["127.0.0.1"]
    )
    password = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="devicetrust-api-") as folder:
        base = Path(folder)
        (base / "chain.pem").write_text(issued.pem + pki.chain_pem(CaRole.ISSUING))
        (base / "key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(password.encode()),
            )
        )
        yield {
            "ssl_certfile": str(base / "chain.pem"),
            "ssl_keyfile": str(base / "key.pem"),
            "ssl_keyfile_password": password,
            "http": TlsH11Protocol,
        }


def tls_options(platform: Platform) -> dict[str, Any]:
    """uvicorn's options from `[server]`: our h11 protocol always (it closes connections
    that do not send their request headers in time: slowloris), HTTPS with `tls_cert`. With
    `tls_client_certs = "optional"`, clients are asked for a certificate, checked in the
    handshake against the platform's root and issuing CA certificates (written, public, to
    `<data_dir>/tls/client-cas.pem` at each start: restart after a CA rotation), and the
    application sees it through the ASGI TLS extension (`api.tls`)."""
    from devicetrust.api.tls import TlsH11Protocol

    cfg = platform.settings.server
    if cfg.tls_cert is None or cfg.tls_key is None:
        return {"http": TlsH11Protocol}
    options: dict[str, Any] = {
        "ssl_certfile": str(cfg.tls_cert),
        "ssl_keyfile": str(cfg.tls_key),
        "http": TlsH11Protocol,
    }
    if cfg.tls_client_certs == "optional":
        options["ssl_cert_reqs"] = ssl.CERT_OPTIONAL
        options["ssl_ca_certs"] = str(_client_ca_file(platform))
    return options


def _client_ca_file(platform: Platform) -> Path:
    cas = [ca for ca in platform.pki.list_cas() if ca.role in (CaRole.ROOT, CaRole.ISSUING)]
    if not cas:
        raise ConfigurationError(
            "config.tls_client_ca_missing",
            "server.tls_client_certs needs a CA to verify clients: run `devicetrust ca init`",
        )
    folder = platform.settings.data_dir / "tls"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / "client-cas.pem"
    path.write_text("".join(ca.pem for ca in cas), encoding="ascii")
    return path


def _dispatcher(platform: Platform, stop: threading.Event) -> threading.Thread:
    return threading.Thread(
        target=platform.dispatcher.run_blocking,
        args=(stop, platform.settings.webhooks.interval_seconds),
        name="webhook-dispatcher",
        daemon=True,
    )


def _pki_upkeep(platform: Platform, stop: threading.Event) -> list[threading.Thread]:
    """The CA's periodic work, one thread each: follow identity events (revoke, hold,
    release, re-issue), re-sign CRLs and OCSP signers that are due, drop provisioning
    challenges and token nonces past their expiry, and spent device-token ids (nonces, JWT
    ids) and retired token keys past theirs."""
    cfg = platform.settings.pki
    pki = platform.pki
    revoker = platform.auto_revoker()
    return [
        _periodic(stop, "pki-auto-revoker", cfg.autorevoke_interval_seconds, pki, revoker.run_once),
        _periodic(stop, "pki-refresh", cfg.crl_refresh_interval_seconds, pki, pki.refresh_due),
        _periodic(
            stop,
            "provisioning-purge",
            cfg.crl_refresh_interval_seconds,
            pki,
            platform.provisioning.purge_expired,
        ),
        _periodic(
            stop,
            "device-auth-purge",
            cfg.crl_refresh_interval_seconds,
            pki,
            platform.device_auth.purge_expired,
        ),
    ]


def _periodic(
    stop: threading.Event, name: str, interval: float, pki: PkiService, step: Callable[[], object]
) -> threading.Thread:
    def run() -> None:
        while not stop.is_set():
            try:
                if pki.list_cas():  # nothing to do before `ca init` (or an import)
                    step()
            except (OperationalError, DeviceTrustError) as exc:
                # A database briefly unreachable or a key that cannot be opened now: retried
                # on the next pass. Anything else is a bug and stops the thread loudly.
                _log.warning("%s pass failed, will retry: %s", name, _why(exc))
            stop.wait(interval)

    return threading.Thread(target=run, name=name, daemon=True)


def _why(exc: Exception) -> str:
    return exc.code if isinstance(exc, DeviceTrustError) else type(exc).__name__

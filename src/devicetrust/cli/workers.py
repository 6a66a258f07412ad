"""`devicetrust serve --workers N`: N API processes sharing one listening socket.

The parent binds the socket, closes its own database connections and forks the workers
(POSIX `fork`), so no connection is ever shared between processes; each worker builds its
own `Platform` and runs uvicorn on the inherited socket, and the kernel spreads connections
over them. The parent keeps the single copies of the background work (webhook dispatcher,
CA upkeep) and supervises: SIGINT or SIGTERM, or a worker dying, stops them all (each
worker drains its requests on SIGTERM), and the exit status says whether a worker failed.

Why processes: a provisioning or an authentication is mostly Python work under the GIL, so
one process uses one core however many threads it has.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

from devicetrust.runtime import Platform, Settings, configure_logging

_log = logging.getLogger(__name__)
# A worker drains for this long, then closes what is left (idle keep-alive TLS connections
# included); the supervisor kills a worker still running `_GRACE_SECONDS` after SIGTERM.
GRACEFUL_SHUTDOWN_SECONDS = 20
_GRACE_SECONDS = 30.0
_POLL_SECONDS = 0.5

AppFactory = Callable[[Platform], Any]


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def start_workers(
    count: int,
    settings: Settings,
    sock: socket.socket,
    make_app: AppFactory,
    uvicorn_options: dict[str, Any],
) -> list[BaseProcess]:
    """Fork `count` workers serving `make_app(platform)` on `sock`. Call before starting any
    thread in this process, and after closing its database connections."""
    context = multiprocessing.get_context("fork")
    workers: list[BaseProcess] = [
        context.Process(
            target=_worker,
            args=(settings, sock, make_app, uvicorn_options),
            name=f"devicetrust-api-{index}",
        )
        for index in range(count)
    ]
    for worker in workers:
        worker.start()
    return workers


def supervise(workers: list[BaseProcess], stop: threading.Event) -> bool:
    """Wait until `stop` is set or a worker exits; then stop every worker. True when all
    of them ended cleanly."""
    while not stop.is_set():
        if any(not w.is_alive() for w in workers):
            _log.error("an API worker exited: stopping the others")
            break
        stop.wait(_POLL_SECONDS)
    for worker in workers:
        if worker.is_alive() and worker.pid is not None:
            os.kill(worker.pid, signal.SIGTERM)
    for worker in workers:
        worker.join(timeout=_GRACE_SECONDS)
        if worker.is_alive():
            worker.kill()
            worker.join()
    failed = {w.name: w.exitcode for w in workers if w.exitcode != 0}
    if failed:
        _log.error("API workers ended with a failure: %s", failed)
    return not failed


def _worker(
    settings: Settings, sock: socket.socket, make_app: AppFactory, options: dict[str, Any]
) -> None:
    import uvicorn

    configure_logging(settings.logging.level, settings.logging.format)
    platform = Platform(settings, migrate=False)  # the parent migrated already
    try:
        config = uvicorn.Config(
            make_app(platform),
            log_config=None,
            server_header=False,
            lifespan="on",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            **options,
        )
        server = uvicorn.Server(config)

        def _stop(signum: int, frame: object) -> None:
            del signum, frame
            server.should_exit = True

        # uvicorn installs its own handlers while it runs and re-raises the signal that
        # stopped it afterwards: this one absorbs that, so a drained worker exits 0.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _stop)
        server.run(sockets=[sock])
    finally:
        platform.close()

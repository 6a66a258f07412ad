"""Fixtures for the events tests: a vault, and a real HTTP receiver on a loopback port that
checks every request's signature with `devicetrust.events.signing.verify`, as a customer's
receiver would."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from devicetrust.domain.clock import FixedClock
from devicetrust.events.signing import SIGNATURE_HEADER, SignatureError, verify
from devicetrust.vault import Vault, generate_kek_text


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verdict: str  # "valid" or the SignatureError code


@dataclass
class Receiver:
    clock: FixedClock
    url: str = ""
    secret: str = ""
    statuses: deque[int] = field(default_factory=deque)  # answers to give, then 200
    received: list[Received] = field(default_factory=list)
    on_request: Callable[[], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        if self.on_request is not None:
            self.on_request()
        try:
            verify(self.secret, headers.get(SIGNATURE_HEADER), body, now=self.clock.now())
            verdict = "valid"
        except SignatureError as exc:
            verdict = exc.code
        with self.lock:
            self.received.append(Received(path, headers, body, verdict))
            if verdict != "valid":
                return 400
            return self.statuses.popleft() if self.statuses else 200


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            status = receiver.handle(self.path, dict(self.headers.items()), body)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


@pytest.fixture
def receiver(clock: FixedClock) -> Iterator[Receiver]:
    recv = Receiver(clock=clock)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recv))
    server.daemon_threads = True
    recv.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/devicetrust"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield recv
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def vault() -> Iterator[Vault]:
    with Vault.from_encoded(generate_kek_text()) as v:
        yield v

"""The demo's webhook receiver: a loopback HTTP server that checks every delivery's signature.

It is what "another system that talked to the robot" would run: it verifies the
`DeviceTrust-Signature` header with `devicetrust.events.signing.verify` against the raw body,
records the verdict, and answers 204 for a valid delivery and 400 otherwise (so an invalid one
would be retried, not acknowledged). Listens on 127.0.0.1 only, on a free port.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devicetrust.domain.clock import Clock, SystemClock
from devicetrust.events.signing import SIGNATURE_HEADER, SignatureError, verify

MAX_BODY = 1_048_576
PATH = "/devicetrust-demo/webhook"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One request the receiver got, and whether its signature verified."""

    received_at: datetime
    body: bytes
    signature_valid: bool
    verdict: str  # "valid", or the SignatureError code

    def document(self) -> dict[str, Any]:
        """The JSON body, or {} if it is not a JSON object."""
        try:
            parsed = json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return {}
        return parsed if isinstance(parsed, dict) else {}


class WebhookReceiver:
    """Start with `start()`, give it the secret with `trust()`, stop with `stop()`."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or SystemClock()
        self._secret: str | None = None
        self._deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="demo-webhook-receiver", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{PATH}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def trust(self, secret: str) -> None:
        """The signing secret `webhook add` handed out (held in memory only)."""
        with self._lock:
            self._secret = secret

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def _record(self, body: bytes, header: str | None) -> Delivery:
        now = self._clock.now()
        with self._lock:
            secret = self._secret
        if secret is None:
            delivery = Delivery(now, body, False, "no secret configured")
        else:
            try:
                verify(secret, header, body, now=now)
                delivery = Delivery(now, body, True, "valid")
            except SignatureError as exc:
                delivery = Delivery(now, body, False, exc.code)
        with self._lock:
            self._deliveries.append(delivery)
        return delivery

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if self.path != PATH or not 0 <= length <= MAX_BODY:
                    self.send_response(404 if self.path != PATH else 413)
                    self.end_headers()
                    return
                body = self.rfile.read(length)
                delivery = receiver._record(body, self.headers.get(SIGNATURE_HEADER))
                self.send_response(204 if delivery.signature_valid else 400)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args  # the demo prints what it received itself

        return Handler

"""The ASGI TLS extension for uvicorn: what a TLS connection's client certificate was, for the
routes that authenticate devices by it (EST simplereenroll, RFC 7030 §3.3.2).

uvicorn terminates TLS -- and with `ssl_cert_reqs=ssl.CERT_OPTIONAL` and `ssl_ca_certs` asks
every client for a certificate and checks it against those CAs during the handshake -- but
puts nothing of it in the ASGI scope. `TlsH11Protocol` is uvicorn's h11 protocol plus the
ASGI "TLS extension" (asgiref specification): for each connection, once the handshake is
done, the application sees `scope["extensions"]["tls"]` with `client_cert_chain` (PEM
strings, the leaf first; Python's `ssl` gives only the leaf), `client_cert_name`,
`client_cert_error` and `tls_version`. A plain-HTTP connection gets no extension; a TLS one
without a client certificate an empty `client_cert_chain`.

What it relies on in uvicorn (stable from 0.30 to today): a protocol class may be passed as
`Config(http=...)`, its `connection_made(transport)` runs after the TLS handshake, and it
hands each request to `self.app`. Never trusts a certificate for being in the scope: the
handshake only proves the client holds the key of a certificate that chains to the
configured CAs; routes verify it again (`pki.DeviceCertVerifier`: revocation, usage,
identity).

It also bounds how long a client may take to send a request's headers (`HEADER_TIMEOUT`,
from the connection's start or the end of the previous response): uvicorn's h11 protocol
has no such limit (its keep-alive timer stops at the first byte), so a slowloris client
sending a byte a second would hold a socket forever. The TLS handshake itself is bounded by
asyncio (`ssl_handshake_timeout`, 60 s); a request's body and the application are not
limited here.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

Scope = MutableMapping[str, Any]
Asgi = Callable[[Scope, Any, Any], Awaitable[None]]

# ASGI TLS extension: the TLS version as its protocol number (RFC 8446 §4.1.2 legacy_version)
_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
HEADER_TIMEOUT = 10.0  # seconds to send a request line and headers (slowloris)


def tls_extension(transport: asyncio.BaseTransport) -> dict[str, Any] | None:
    """`scope["extensions"]["tls"]` for a connection, or None when it is not TLS."""
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    leaf = ssl_object.getpeercert(binary_form=True)
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(leaf)] if leaf else [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": _VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


def client_certificate_chain(scope: Scope) -> list[str]:
    """The PEM client chain (leaf first) the server put in the scope; [] when none."""
    extensions = scope.get("extensions") or {}
    tls = extensions.get("tls") if isinstance(extensions, dict) else None
    chain = tls.get("client_cert_chain") if isinstance(tls, dict) else None
    return [pem for pem in chain or () if isinstance(pem, str)]


def with_tls(app: Asgi, tls: dict[str, Any]) -> Asgi:
    """`app`, seeing `tls` as its HTTP and WebSocket scopes' TLS extension."""

    async def call(scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket"):
            scope = {**scope, "extensions": {**(scope.get("extensions") or {}), "tls": tls}}
        await app(scope, receive, send)

    return call


class TlsH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that fills in the ASGI TLS extension (module docstring)."""

    header_timeout: float = HEADER_TIMEOUT
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        tls = tls_extension(transport)
        if tls is not None:
            self.app = with_tls(self.app, tls)
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the headers are in: a request runs
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_header_deadline()  # the next request's headers, idle time included

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.debug("closing a connection that did not send its headers in time")
            self.transport.close()

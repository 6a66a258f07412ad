"""What a request body may be: at most `max_body_bytes`, and JSON.

The size is enforced on the bytes actually received, not on the `Content-Length` the client
claims: a chunked upload, or one that lies about its length, is cut off as soon as it passes
the limit, before any handler sees it. A declared length over the limit is refused without
reading a byte.

Never lets a handler run on a truncated or oversized body: once the limit is passed, the
app's own response (whatever parsing error it made of the cut-off body) is replaced by 413.
"""

from __future__ import annotations

from email.message import Message

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from devicetrust.api.problems import problem
from devicetrust.domain.errors import PayloadTooLarge

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _is_json(content_type: str) -> bool:
    message = Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class RequestBodyLimits:
    """ASGI middleware: refuse bodies over `max_body_bytes` (413) or not JSON (415)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, json_prefix: str = "/v1/") -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.json_prefix = json_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            length = int(declared) if declared.isascii() and declared.isdigit() else -1
            if length < 0:
                await problem(400, "request.bad_content_length", "invalid Content-Length")(
                    scope, receive, send
                )
                return
            if length > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return
        if scope["method"] in _BODY_METHODS and str(scope["path"]).startswith(self.json_prefix):
            content_type = _header(scope, b"content-type")
            has_body = declared not in (None, "0") or _header(scope, b"transfer-encoding")
            if has_body and (content_type is None or not _is_json(content_type)):
                await problem(
                    415,
                    "request.unsupported_media_type",
                    "request bodies are JSON: send Content-Type: application/json",
                )(scope, receive, send)
                return
        await self._guarded(scope, receive, send)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> AsgiMessage:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    exceeded = True
                    raise PayloadTooLarge(
                        "request.body_too_large",
                        f"request body over {self.max_body_bytes} bytes",
                    )
            return message

        async def guarded_send(message: AsgiMessage) -> None:
            nonlocal started
            if exceeded:
                # Whatever the app answered to a cut-off body is replaced by the 413 below.
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except PayloadTooLarge:
            if not exceeded:
                raise
        if exceeded and not started:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            "request.body_too_large",
            f"the request body is larger than the limit of {self.max_body_bytes} bytes",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)

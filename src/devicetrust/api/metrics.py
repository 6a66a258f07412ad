"""Prometheus metrics of the API: request counts and latency by route template and status.

Each app owns its `CollectorRegistry` (never the process-global one), so several apps in
one process (tests, an embedded server next to the CLI) do not collide. Labels are route
*templates* (`/v1/logical-identities/{name}`), never raw paths, so a client cannot blow up
the number of series by requesting made-up URLs.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "<unmatched>"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "devicetrust_http_requests",
            "HTTP requests handled by the API, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "devicetrust_http_request_duration_seconds",
            "Time to handle an API request, by route template.",
            ["method", "route"],
            registry=self.registry,
        )


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class MetricsMiddleware:
    """ASGI middleware that records every HTTP request in `ApiMetrics`."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        # A duration, not a time of day: the monotonic counter is the right clock here.
        start = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = _route_template(scope)
            method = str(scope.get("method", "")).upper()
            method = method if method in _METHODS else "OTHER"
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - start)

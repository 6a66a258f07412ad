"""Every error the API returns, as RFC 9457 `application/problem+json`.

A problem carries `type` (`urn:devicetrust:problem:<code>`), `title`, `status`, `detail` and
the stable machine-readable `code` of the `DeviceTrustError` it came from, so clients branch
on `code` and never on prose. Request-validation errors add `errors`, the list of fields
that were wrong.

Never does a problem leak what it must not: a 401/403 carries no extension members (no
oracle on which part of a credential was wrong) and a 500 says nothing about the fault
beyond "internal error" (the traceback goes to the log).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from devicetrust.domain.errors import DeviceTrustError, Forbidden, Unauthorized

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:devicetrust:problem:"
_log = logging.getLogger(__name__)

_STANDARD = frozenset({"type", "title", "status", "detail", "code", "instance"})
_RESERVED = _STANDARD | {"errors"}
_HTTP_CODES = {
    # The framework raises a bare 400 only when a JSON body cannot even be decoded.
    400: "request.malformed_json",
    404: "request.not_found",
    405: "request.method_not_allowed",
    406: "request.not_acceptable",
    413: "request.body_too_large",
    415: "request.unsupported_media_type",
}
# Extension members are plain JSON values only; anything else is dropped, not stringified.
_JSON_SCALARS = (str, int, float, bool, type(None))


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_CONTENT_TYPE


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProblemResponse:
    """Build one problem response; `extra` becomes extension members."""
    body: dict[str, Any] = {
        "type": f"{TYPE_PREFIX}{code}",
        "title": _title(status),
        "status": status,
        "detail": detail,
        "code": code,
    }
    for key, value in (extra or {}).items():
        if key not in _STANDARD:
            body[key] = value
    return ProblemResponse(body, status_code=status, headers=dict(headers or {}))


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _safe_details(details: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in details.items() if k not in _RESERVED and isinstance(v, _JSON_SCALARS)}


def from_error(exc: DeviceTrustError) -> ProblemResponse:
    """The problem for a `DeviceTrustError`, by its `status` and `code`."""
    if isinstance(exc, Unauthorized):
        # RFC 9110 §11.6.1: a 401 names the scheme the client should use.
        return problem(exc.status, exc.code, exc.message, headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, Forbidden):
        return problem(exc.status, exc.code, exc.message)
    if exc.status >= 500:
        _log.error("server error", extra={"code": exc.code, "detail": exc.message})
        return problem(exc.status, exc.code, "the server cannot complete the request")
    return problem(exc.status, exc.code, exc.message, extra=_safe_details(exc.details))


def _field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        out.append({"loc": loc, "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))})
    return out


def from_validation(exc: RequestValidationError) -> ProblemResponse:
    """Malformed JSON is a 400; a well-formed body with wrong fields a 422; a wrong query,
    path or header parameter a 400. Each lists the fields at fault (never their values, which
    may be secrets)."""
    errors = list(exc.errors())
    fields = _field_errors(errors)
    if any(err.get("type") == "json_invalid" for err in errors):
        return problem(400, "request.malformed_json", "the request body is not valid JSON")
    in_body = all(f["loc"][:1] == ["body"] for f in fields)
    if fields and in_body:
        names = ", ".join(".".join(f["loc"][1:]) or "body" for f in fields)
        return problem(
            422, "request.invalid_body", f"invalid request body: {names}", extra={"errors": fields}
        )
    names = ", ".join(".".join(f["loc"]) for f in fields)
    return problem(
        400, "request.invalid_parameter", f"invalid parameter: {names}", extra={"errors": fields}
    )


def from_http(exc: StarletteHTTPException) -> ProblemResponse:
    """Errors raised by routing and the framework (unknown route, wrong method, ...)."""
    code = _HTTP_CODES.get(exc.status_code, f"request.http_{exc.status_code}")
    detail = exc.detail if isinstance(exc.detail, str) else _title(exc.status_code)
    if exc.status_code == 400:
        detail = "the request body is not valid JSON"
    elif exc.status_code == 404:
        detail = "no such resource"
    elif exc.status_code == 405:
        detail = "method not allowed on this resource"
    return problem(exc.status_code, code, detail, headers=exc.headers)


async def _on_domain_error(_request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, DeviceTrustError)
    return from_error(exc)


async def _on_validation_error(_request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    return from_validation(exc)


async def _on_http_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        # The router names only the first route on the path; RFC 9110 §15.5.6 wants them all.
        routes = getattr(request.app.state, "route_table", request.app.router.routes)
        allowed = ", ".join(_allowed_methods(routes, request.scope))
        exc = StarletteHTTPException(
            405, exc.detail, headers={**(exc.headers or {}), "Allow": allowed}
        )
    return from_http(exc)


def _allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """The methods of the path's resource, sorted: of the route templates that match the
    path, the most specific ones (most literal segments), so `/v1/physical-identities/batch`
    is not also `/v1/physical-identities/{physical_id}`."""
    by_specificity: dict[int, set[str]] = {}
    for route in routes:
        if not isinstance(route, Route) or not route.methods:
            continue
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            literal = sum(1 for part in route.path.split("/") if part and "{" not in part)
            by_specificity.setdefault(literal, set()).update(route.methods)
    return sorted(by_specificity[max(by_specificity)]) if by_specificity else []


async def _on_unexpected(request: Request, exc: Exception) -> ProblemResponse:
    # A bug, not a user error: log it whole, tell the client nothing about it.
    _log.error(
        "unhandled error",
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"path": request.url.path},
    )
    return problem(500, "internal.error", "the server cannot complete the request")


async def _on_database_unavailable(request: Request, exc: Exception) -> ProblemResponse:
    # The database cannot be reached or written (down, disk full, locked): nothing was
    # changed, and the client may retry; not a bug, so no traceback.
    _log.error("database unavailable: %s", str(exc).splitlines()[0][:200],
               extra={"path": request.url.path})
    return problem(
        503,
        "store.unavailable",
        "the database cannot be reached or written right now; nothing was changed, retry later",
        headers={"Retry-After": "5"},
    )


def install(app: FastAPI) -> None:
    """Route every error of `app` through problem+json."""
    app.add_exception_handler(DeviceTrustError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(OperationalError, _on_database_unavailable)
    app.add_exception_handler(Exception, _on_unexpected)

"""Operator authentication and authorisation for the API: every route states its permission.

A route either `requires(scope)` — an API key presented as `Authorization: Bearer <token>`
or `X-API-Key: <token>`, live and holding the scope — or says `allow_insecure(reason)` by
name. `create_app` refuses to build an app with a route that says neither (fail closed).

Order of checks, for every protected request: a credential is present (else 401
`auth.missing_key`); it names a live key and its secret matches (else 401 `auth.invalid_key`,
the same answer whatever was wrong); the key holds the scope or `admin` (else 403
`auth.insufficient_scope`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Security
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import BaseRoute

from devicetrust.api.platform import PlatformDep
from devicetrust.auth import ApiKey, Scope, has_scope
from devicetrust.domain.errors import ConfigurationError, Forbidden

API_KEY_HEADER = "X-API-Key"

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerApiKey",
    bearerFormat="dt_<key_id>_<secret>",
    description="An operator API key (`devicetrust apikey create`), as a bearer token.",
)
_header_key = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    scheme_name="headerApiKey",
    description="The same operator API key, in the X-API-Key header.",
)


class Permission:
    """Dependency: authenticate the caller and require `scope`; returns the caller's key."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    def __call__(
        self,
        platform: PlatformDep,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        header_key: Annotated[str | None, Security(_header_key)],
    ) -> ApiKey:
        token = bearer.credentials if bearer is not None else header_key
        key = platform.api_keys.authenticate(token)
        if not has_scope(key, self.scope):
            raise Forbidden(
                "auth.insufficient_scope", f"this API key lacks the {self.scope.value!r} scope"
            )
        return key


class AllowInsecure:
    """Dependency that does nothing but mark a route as open to anyone, and say why."""

    def __init__(self, reason: str) -> None:
        if not reason.strip():
            raise ConfigurationError("api.insecure_without_reason", "allow_insecure needs a reason")
        self.reason = reason

    def __call__(self) -> None:
        return None


def requires(scope: Scope) -> Any:
    """`key: Annotated[ApiKey, requires(Scope.X)]` — the route needs an API key with X."""
    return Depends(Permission(scope))


def allow_insecure(reason: str) -> Any:
    """`dependencies=[allow_insecure("why")]` — the route is reachable without a credential."""
    return Depends(AllowInsecure(reason))


def permission_of(route: APIRoute) -> Permission | AllowInsecure | None:
    """What a route declared; `ConfigurationError` if it declared two contradictory things."""
    found: list[Permission | AllowInsecure] = []
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        if isinstance(dependant.call, Permission | AllowInsecure):
            found.append(dependant.call)
        pending.extend(dependant.dependencies)
    if len(found) > 1:
        raise ConfigurationError(
            "api.ambiguous_permission", f"route {route.path} declares more than one permission"
        )
    return found[0] if found else None


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every API route an app serves, through included routers (FastAPI versions differ in
    whether `include_router` copies routes or keeps the router)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if isinstance(included, APIRouter):
            yield from api_routes(included.routes)


def check_every_route_states_permission(routes: Iterable[BaseRoute]) -> None:
    """Refuse an app in which some API route has no stated permission."""
    for route in api_routes(routes):
        if permission_of(route) is None:
            raise ConfigurationError(
                "api.route_without_permission",
                f"route {sorted(route.methods or ())} {route.path} states no permission: "
                "use requires(scope) or allow_insecure(reason)",
            )

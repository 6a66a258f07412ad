"""The REST API: `create_app(platform)` builds a FastAPI app over the platform's services.

Owns the wiring only: routers, problem+json error handling, request-body limits, metrics
and the OpenAPI description. Never writes to the database itself (handlers call services,
which audit every change), and never starts an app in which a route has no stated
permission.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from devicetrust import __version__
from devicetrust.api import device_auth, problems
from devicetrust.api.limits import RequestBodyLimits
from devicetrust.api.metrics import ApiMetrics, MetricsMiddleware
from devicetrust.api.routers.api_keys import router as api_keys_router
from devicetrust.api.routers.attestation import router as attestation_router
from devicetrust.api.routers.audit import router as audit_router
from devicetrust.api.routers.credentials import device_router as credentials_device_router
from devicetrust.api.routers.credentials import router as credentials_router
from devicetrust.api.routers.data import router as data_router
from devicetrust.api.routers.device_attestation import router as device_attestation_router
from devicetrust.api.routers.est import router as est_router
from devicetrust.api.routers.feedback import router as feedback_router
from devicetrust.api.routers.logical import router as logical_router
from devicetrust.api.routers.operations import router as operations_router
from devicetrust.api.routers.physical import router as physical_router
from devicetrust.api.routers.pki import router as pki_router
from devicetrust.api.routers.pki_public import OcspResponders
from devicetrust.api.routers.pki_public import router as pki_public_router
from devicetrust.api.routers.policy import posture_router
from devicetrust.api.routers.policy import router as policy_router
from devicetrust.api.routers.provisioning import device_router as provisioning_device_router
from devicetrust.api.routers.provisioning import router as enrollments_router
from devicetrust.api.routers.webhooks import router as webhooks_router
from devicetrust.api.schemas import ProblemOut
from devicetrust.api.security import check_every_route_states_permission
from devicetrust.runtime.container import Platform

DESCRIPTION = """\
Identity registry of a devicetrust fleet: physical identities (immutable, one per unit),
logical identities (business names, mutable and transferable), their bindings and history,
the certificate authority, webhooks and the audit log; the devices' diagnostics and
telemetry, and feedback to them.

Every request needs an operator API key (`Authorization: Bearer dt_...` or `X-API-Key`)
holding the scope the route names; errors are `application/problem+json` with a stable `code`.
Device routes (`/v1/device/...`) instead authenticate the unit itself: its TLS client
certificate, `Authorization: Bearer <device JWT>` or `SharedAccessSignature <HMAC token>`.
The CA's CRLs, CA certificates and OCSP responder (`/pki/...`, the URLs in certificates) are
public.
"""

_PROBLEM = {"model": ProblemOut, "content": {problems.PROBLEM_CONTENT_TYPE: {}}}
_PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {**_PROBLEM, "description": text}
    for status, text in {
        400: "Bad request: malformed JSON, name or id",
        401: "Missing or invalid API key",
        403: "The API key lacks the scope",
        404: "No such resource",
        409: "Conflict with the current state",
        413: "Request body too large",
        415: "Request body is not JSON",
        422: "Request body fields invalid",
        429: "Too many attempts: retry after `Retry-After` seconds",
    }.items()
}


def create_app(platform: Platform) -> FastAPI:
    app = FastAPI(
        title="devicetrust",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=None,  # served by `operations.openapi`, which states its permission
        docs_url=None,
        redoc_url=None,
    )
    metrics = ApiMetrics()
    app.state.platform = platform
    app.state.metrics = metrics
    app.state.ocsp_responders = OcspResponders(platform)
    problems.install(app)
    device_auth.install(app)
    problem_routers = (
        physical_router,
        logical_router,
        webhooks_router,
        audit_router,
        api_keys_router,
        pki_router,
        enrollments_router,
        policy_router,
        posture_router,
        attestation_router,
        credentials_router,
        data_router,
        feedback_router,
        provisioning_device_router,
        credentials_device_router,
        device_attestation_router,
        est_router,
    )
    for router in problem_routers:
        app.include_router(router, responses=_PROBLEM_RESPONSES)
    app.include_router(operations_router)
    app.include_router(pki_public_router)
    # The flat table a 405 reads its `Allow` from (FastAPI nests included routers).
    app.state.route_table = [
        route
        for router in (*problem_routers, operations_router, pki_public_router)
        for route in router.routes
    ]
    # Added last = outermost: metrics also count the 413/415 refusals of the body limits.
    app.add_middleware(RequestBodyLimits, max_body_bytes=platform.settings.server.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    check_every_route_states_permission(app.routes)
    return app

"""Routes for operating the server: liveness, Prometheus metrics, the OpenAPI document.

These are the only routes open without a credential, each saying why by name.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from devicetrust.api.metrics import ApiMetrics
from devicetrust.api.openapi import openapi_document
from devicetrust.api.security import allow_insecure

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    summary="Liveness probe",
    dependencies=[allow_insecure("load balancers and orchestrators probe without credentials")],
)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    include_in_schema=False,
    dependencies=[
        allow_insecure("Prometheus scrapes without credentials; counts only, no identities")
    ],
)
def metrics(request: Request) -> Response:
    registry = request.app.state.metrics
    assert isinstance(registry, ApiMetrics)
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/openapi.json",
    include_in_schema=False,
    dependencies=[allow_insecure("the API description is public; it holds no data")],
)
def openapi(request: Request) -> dict[str, Any]:
    return openapi_document(request.app)

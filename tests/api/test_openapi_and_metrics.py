"""The open routes: the OpenAPI document, Prometheus metrics and the liveness probe."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from devicetrust import __version__
from devicetrust.auth import Scope
from devicetrust.runtime import Platform
from tests.api.conftest import MintKey
from tests.api.wire import bearer, unit

# Routes a device calls before it has any credential: it authenticates by its attestation
# (token, signed nonce, TPM) inside the request, not by an operator API key.
OPEN_PATHS = {
    "/healthz",
    "/v1/provisioning/challenge",
    "/v1/provisioning/register",
    "/v1/provisioning/status/{registration}",
    "/.well-known/est/cacerts",
    "/.well-known/est/csrattrs",
    "/.well-known/est/simpleenroll",
    "/.well-known/est/simplereenroll",
    # A device authenticated by its own credential (certificate, JWT, HMAC token), not a key.
    "/v1/device/me",
    "/v1/device/boot-attestation",
    "/v1/device/boot-attestation/challenge",
}


def test_openapi_is_served_and_declares_security(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = json.loads(response.text)
    assert document["openapi"].startswith("3.")
    assert document["info"] == {
        "title": "devicetrust",
        "version": __version__,
        "description": document["info"]["description"],
    }
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "dt_<key_id>_<secret>",
        "description": schemes["bearerApiKey"]["description"],
    }
    assert schemes["headerApiKey"]["in"] == "header"
    assert schemes["headerApiKey"]["name"] == "X-API-Key"
    operations = [
        (path, method, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
    ]
    assert len(operations) >= 25
    for path, method, op in operations:
        if path in OPEN_PATHS:
            assert "security" not in op, path
            continue
        assert op["security"] == [{"bearerApiKey": []}, {"headerApiKey": []}], (path, method)
        assert "application/problem+json" in op["responses"]["401"]["content"], path


def test_openapi_document_is_valid(client: TestClient) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    document = client.get("/openapi.json").json()
    validator.validate(document)
    problem_422 = document["paths"]["/v1/physical-identities"]["post"]["responses"]["422"]
    schema = problem_422["content"]["application/problem+json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ProblemOut"}


def test_openapi_has_no_secret_fields_outside_creation_responses(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    holders = {
        name
        for name, schema in schemas.items()
        for field in schema.get("properties", {})
        if field in ("token", "secret", "secret_hash", "secret_sealed")
    }
    assert holders == {"ApiKeyCreatedOut", "WebhookCreatedOut"}
    assert schemas["UnitIn"]["additionalProperties"] is False


def test_metrics_count_requests_by_route_template(
    client: TestClient, mint: MintKey, platform: Platform
) -> None:
    writer = bearer(mint(Scope.IDENTITY_WRITE, Scope.IDENTITY_READ))
    created = client.post("/v1/physical-identities", json=unit(), headers=writer).json()
    client.get(f"/v1/physical-identities/{created['physical_id']}", headers=writer)
    client.get("/v1/physical-identities/c2c38155-b0d2-48b6-82fd-22fe3b316224", headers=writer)
    client.get("/made/up/path")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    template = 'route="/v1/physical-identities/{physical_id}"'
    assert any(
        line.startswith("devicetrust_http_requests_total")
        and template in line
        and 'status="200"' in line
        and line.endswith(" 1.0")
        for line in lines
    )
    assert any(template in line and 'status="404"' in line for line in lines)
    assert any('route="<unmatched>"' in line and 'status="404"' in line for line in lines)
    assert not any(created["physical_id"] in line for line in lines)
    assert any(
        line.startswith("devicetrust_http_request_duration_seconds_bucket") for line in lines
    )


def test_each_app_has_its_own_metrics(platform: Platform) -> None:
    from devicetrust.api import create_app

    first, second = TestClient(create_app(platform)), TestClient(create_app(platform))
    first.get("/healthz")
    first.get("/healthz")
    second_metrics = second.get("/metrics").text
    assert 'route="/healthz"' not in second_metrics


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}

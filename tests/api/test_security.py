"""Every route states its permission; keys are checked before anything happens."""

from __future__ import annotations

import re

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from devicetrust.api.security import (
    AllowInsecure,
    Permission,
    api_routes,
    check_every_route_states_permission,
    permission_of,
)
from devicetrust.auth import Scope
from devicetrust.domain.errors import ConfigurationError
from devicetrust.runtime import Platform
from devicetrust.store.database import Database
from tests.api.conftest import MintKey
from tests.api.wire import NAME, assert_problem, bearer, unit
from tests.conftest import snapshot_tables

OPEN_ROUTES = {
    "/healthz",
    "/metrics",
    "/openapi.json",
    # The CA's public endpoints, at the URLs written into certificates (relying parties).
    "/pki/crl/{ca_id}.crl",
    "/pki/ca/{ca_id}.crt",
    "/pki/ocsp",
    "/pki/ocsp/{encoded:path}",
    # Devices before they hold a credential: they authenticate by attestation in the body.
    "/v1/provisioning/challenge",
    "/v1/provisioning/register",
    "/v1/provisioning/status/{registration}",
    "/.well-known/est/cacerts",
    "/.well-known/est/csrattrs",
    "/.well-known/est/simpleenroll",
    "/.well-known/est/simplereenroll",
    # Devices holding a credential: the route authenticates the unit itself (api.device_auth).
    "/v1/device/me",
    "/v1/device/boot-attestation",
    "/v1/device/boot-attestation/challenge",
}


def _protected(app: FastAPI) -> list[tuple[str, str, Scope]]:
    out: list[tuple[str, str, Scope]] = []
    for route in api_routes(app.routes):
        declared = permission_of(route)
        if isinstance(declared, Permission):
            out.extend(
                (method, route.path, declared.scope) for method in sorted(route.methods or ())
            )
    return out


def _concrete(path: str) -> str:
    """A path template filled with plausible values."""
    values = {
        "physical_id": "c2c38155-b0d2-48b6-82fd-22fe3b316224",
        "name": NAME,
        "webhook_id": "5f0c9c8e-6c1e-4d6f-9a53-0d8f1b7c2a10",
        "delivery_id": "1",
        "key_id": "0123456789ab",
        "ca_id": "0b7c3f3e-3d5b-4c61-9d7e-2f4a8f2f6a11",
        "serial": "7F00000000000000000000000000000000000000",
        "ref": "c2c38155-b0d2-48b6-82fd-22fe3b316224",
        "registration": "c2c38155-b0d2-48b6-82fd-22fe3b316224",
        "version": "1",
        "logical_name": NAME,
        "feedback_id": "5f0c9c8e-6c1e-4d6f-9a53-0d8f1b7c2a10",
    }
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def test_every_route_states_a_permission_and_only_named_ones_are_open(app: FastAPI) -> None:
    open_routes = set()
    for route in api_routes(app.routes):
        declared = permission_of(route)
        assert declared is not None, route.path
        if isinstance(declared, AllowInsecure):
            assert declared.reason
            open_routes.add(route.path)
    assert open_routes == OPEN_ROUTES


def test_an_app_with_a_route_without_permission_is_refused() -> None:
    router = APIRouter()

    @router.get("/oops")
    def oops() -> dict[str, str]:
        return {}

    app = FastAPI()
    app.include_router(router)
    with pytest.raises(ConfigurationError) as err:
        check_every_route_states_permission(app.routes)
    assert err.value.code == "api.route_without_permission"


def test_every_protected_route_refuses_a_request_without_key(
    client: TestClient, app: FastAPI, db: Database
) -> None:
    routes = _protected(app)
    assert len(routes) >= 25
    before = snapshot_tables(db)
    for method, path, _scope in routes:
        response = client.request(method, _concrete(path), json={})
        body = assert_problem(response, 401, "auth.missing_key")
        assert response.headers["www-authenticate"] == "Bearer"
        assert set(body) == {"type", "title", "status", "detail", "code"}, (method, path)
    assert snapshot_tables(db) == before


def test_wrong_key_is_refused_without_saying_why(
    client: TestClient, mint: MintKey, platform: Platform
) -> None:
    token = mint(Scope.IDENTITY_READ)
    key_id = token.split("_")[1]
    wrong = [
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # wrong secret
        "dt_ffffffffffff_" + token.split("_", 2)[2],  # unknown id
        "not-a-token",
        "dt_" + "x" * 200,
    ]
    bodies = []
    for candidate in wrong:
        response = client.get("/v1/physical-identities", headers=bearer(candidate))
        bodies.append(assert_problem(response, 401, "auth.invalid_key"))
    assert all(b == bodies[0] for b in bodies)
    assert key_id not in str(bodies)
    # The same key, correctly presented, works both ways.
    assert client.get("/v1/physical-identities", headers=bearer(token)).status_code == 200
    assert client.get("/v1/physical-identities", headers={"X-API-Key": token}).status_code == 200
    assert platform.api_keys.get(key_id).revoked_at is None


def test_wrong_scope_is_forbidden_and_changes_nothing(
    client: TestClient, mint: MintKey, db: Database
) -> None:
    reader = bearer(mint(Scope.IDENTITY_READ, Scope.AUDIT_READ, Scope.WEBHOOK_WRITE))
    before = snapshot_tables(db)
    response = client.post("/v1/physical-identities", json=unit(), headers=reader)
    body = assert_problem(response, 403, "auth.insufficient_scope")
    assert "identity:write" in body["detail"]
    assert_problem(client.get("/v1/api-keys", headers=reader), 403, "auth.insufficient_scope")
    assert_problem(client.get("/v1/webhooks", headers=reader), 403, "auth.insufficient_scope")
    assert snapshot_tables(db) == before


def test_scopes_map_to_routes(client: TestClient, mint: MintKey) -> None:
    checks = [
        (Scope.IDENTITY_READ, "GET", "/v1/logical-identities"),
        (Scope.WEBHOOK_READ, "GET", "/v1/webhooks"),
        (Scope.WEBHOOK_READ, "GET", "/v1/webhooks/deliveries"),
        (Scope.AUDIT_READ, "GET", "/v1/audit"),
        (Scope.AUDIT_READ, "GET", "/v1/audit/verify"),
        (Scope.ADMIN, "GET", "/v1/api-keys"),
    ]
    for scope, method, path in checks:
        allowed = bearer(mint(scope))
        assert client.request(method, path, headers=allowed).status_code == 200, path
        others = [s for s in Scope if s not in (scope, Scope.ADMIN)]
        denied = bearer(mint(*others))
        assert_problem(client.request(method, path, headers=denied), 403, "auth.insufficient_scope")


def test_revoked_key_is_refused_at_once(
    client: TestClient, admin: dict[str, str], platform: Platform
) -> None:
    created = client.post(
        "/v1/api-keys", json={"name": "robot", "scopes": ["identity:read"]}, headers=admin
    )
    assert created.status_code == 201
    token = created.json()["token"]
    key_id = created.json()["key"]["key_id"]
    assert client.get("/v1/physical-identities", headers=bearer(token)).status_code == 200
    revoked = client.delete(f"/v1/api-keys/{key_id}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = client.get("/v1/physical-identities", headers=bearer(token))
    assert_problem(refused, 401, "auth.invalid_key")
    assert_problem(
        client.delete(f"/v1/api-keys/{key_id}", headers=admin), 409, "auth.key_already_revoked"
    )
    assert platform.api_keys.get(key_id).revoked_at is not None


def test_api_key_token_is_shown_once(client: TestClient, admin: dict[str, str]) -> None:
    created = client.post(
        "/v1/api-keys",
        json={"name": "ci", "scopes": ["audit:read", "identity:read"]},
        headers=admin,
    )
    assert created.status_code == 201
    token = created.json()["token"]
    assert created.json()["key"]["scopes"] == ["audit:read", "identity:read"]
    listed = client.get("/v1/api-keys", headers=admin)
    assert listed.status_code == 200
    assert token.split("_", 2)[2] not in listed.text
    assert "secret_hash" not in listed.text
    assert {k["name"] for k in listed.json()["items"]} == {"test admin", "ci"}
    audit = client.get("/v1/audit", headers=admin).text
    assert token.split("_", 2)[2] not in audit


def test_actor_is_the_api_key(client: TestClient, mint: MintKey, platform: Platform) -> None:
    token = mint(Scope.IDENTITY_WRITE)
    key_id = token.split("_")[1]
    response = client.post("/v1/physical-identities", json=unit(), headers=bearer(token))
    assert response.status_code == 201
    entries = platform.audit.entries(after_seq=0, limit=100, subject=None)
    assert entries[-1].action == "identity.created"
    assert entries[-1].actor == f"apikey:{key_id}"

"""The operator side of provisioning (enrollments, the pending queue, approvals) is guarded
by its own scopes, `provisioning:read` and `provisioning:write`: a key holding only
`identity:*` gets 403 problem+json and changes nothing; the right scope gets 2xx; `admin`
still implies both."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from devicetrust.api.routers.provisioning import router as enrollment_router
from devicetrust.api.security import Permission, api_routes, permission_of
from devicetrust.auth import Scope
from devicetrust.store.database import Database
from tests.api.conftest import MintKey
from tests.api.wire import bearer
from tests.conftest import snapshot_tables

ENROLLMENTS = "/v1/enrollments"
GROUP = {
    "name": "line-03",
    "attestation": "symmetric-key",
    "allocation": {"policy": "pool", "pool_pattern": "line-03-left-welding-{01..24}"},
}


def test_every_operator_provisioning_route_needs_a_provisioning_scope(app: FastAPI) -> None:
    served = {
        (method, route.path): permission_of(route)
        for route in api_routes(app.routes)
        if route.path.startswith(ENROLLMENTS)
        for method in route.methods or ()
    }
    assert len(served) == len(list(api_routes(enrollment_router.routes))) >= 7
    for (method, path), permission in served.items():
        assert isinstance(permission, Permission), (method, path)
        wanted = Scope.PROVISIONING_READ if method == "GET" else Scope.PROVISIONING_WRITE
        assert permission.scope is wanted, (method, path)


@pytest.mark.parametrize(
    ("method", "path", "body", "scope"),
    [
        ("GET", ENROLLMENTS, None, "provisioning:read"),
        ("GET", f"{ENROLLMENTS}/pending", None, "provisioning:read"),
        ("GET", f"{ENROLLMENTS}/line-03", None, "provisioning:read"),
        ("POST", f"{ENROLLMENTS}/groups", GROUP, "provisioning:write"),
        ("PATCH", f"{ENROLLMENTS}/line-03", {"enabled": False}, "provisioning:write"),
        (
            "POST",
            f"{ENROLLMENTS}/pending/00000000-0000-4000-8000-000000000000/approve",
            {"name": "press-9"},
            "provisioning:write",
        ),
    ],
)
def test_identity_scopes_no_longer_reach_provisioning(
    client: TestClient,
    mint: MintKey,
    db: Database,
    method: str,
    path: str,
    body: dict[str, object] | None,
    scope: str,
) -> None:
    admin = bearer(mint(Scope.ADMIN))
    assert client.post(f"{ENROLLMENTS}/groups", json=GROUP, headers=admin).status_code == 201
    identity_only = bearer(mint(Scope.IDENTITY_READ, Scope.IDENTITY_WRITE, Scope.PKI_WRITE))
    before = snapshot_tables(db)

    refused = client.request(method, path, json=body, headers=identity_only)

    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["code"] == "auth.insufficient_scope"
    assert scope in problem["detail"]
    assert snapshot_tables(db) == before


def test_read_scope_reads_and_write_scope_writes(client: TestClient, mint: MintKey) -> None:
    reader = bearer(mint(Scope.PROVISIONING_READ))
    writer = bearer(mint(Scope.PROVISIONING_WRITE))

    assert client.post(f"{ENROLLMENTS}/groups", json=GROUP, headers=reader).status_code == 403
    created = client.post(f"{ENROLLMENTS}/groups", json=GROUP, headers=writer)
    assert created.status_code == 201, created.text
    assert "key" in created.json()  # the group key, shown once

    assert client.get(ENROLLMENTS, headers=writer).status_code == 403
    listed = client.get(ENROLLMENTS, headers=reader)
    assert listed.status_code == 200
    assert [e["name"] for e in listed.json()["items"]] == ["line-03"]
    assert client.get(f"{ENROLLMENTS}/pending", headers=reader).status_code == 200

    patched = client.patch(f"{ENROLLMENTS}/line-03", json={"enabled": False}, headers=writer)
    assert patched.status_code == 200
    assert client.get(f"{ENROLLMENTS}/line-03", headers=reader).json()["enabled"] is False


def test_admin_implies_the_provisioning_scopes(client: TestClient, mint: MintKey) -> None:
    admin = bearer(mint(Scope.ADMIN))
    assert client.post(f"{ENROLLMENTS}/groups", json=GROUP, headers=admin).status_code == 201
    assert client.get(ENROLLMENTS, headers=admin).status_code == 200

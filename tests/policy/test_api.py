"""`/v1/policies/...` and `/v1/posture` over a real Platform (SQLite and PostgreSQL): scopes
enforced, refusals as problem+json that change nothing, relaxations that lapse with the
clock, posture from units registered through the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from devicetrust.auth import Scope
from devicetrust.domain import FixedClock
from devicetrust.runtime import Platform
from devicetrust.store.database import Database
from tests.api.wire import assert_problem
from tests.conftest import snapshot_tables
from tests.operator_api import key

REASON = "legacy PLC firmware until the Q3 update"


def test_scopes_are_enforced(
    client: TestClient, platform: Platform, reader: dict[str, str]
) -> None:
    nothing = client.get("/v1/policies/fleet")
    assert_problem(nothing, 401, "auth.missing_key")
    identity_only = key(platform, Scope.IDENTITY_READ)
    assert_problem(client.get("/v1/posture", headers=identity_only), 403, "auth.insufficient_scope")
    assert client.get("/v1/policies/fleet", headers=reader).status_code == 200
    change = {"changes": {"clock_skew": "1m"}}
    assert_problem(
        client.patch("/v1/policies/fleet", json=change, headers=reader),
        403,
        "auth.insufficient_scope",
    )
    relax = {"rule": "min_tls_version", "value": "1.2", "reason": REASON, "expires": "1d"}
    assert_problem(
        client.post("/v1/policies/relaxations", json=relax, headers=reader),
        403,
        "auth.insufficient_scope",
    )


def test_policy_relaxation_and_posture_flow(
    client: TestClient, writer: dict[str, str], clock: FixedClock, pid: str
) -> None:
    changed = client.patch(
        "/v1/policies/fleet",
        json={"changes": {"max_certificate_lifetime": "12h", "auth_methods": ["mtls"]}},
        headers=writer,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["effective"]["sources"]["auth_methods"] == "fleet"
    device_scope = client.patch(
        f"/v1/policies/device:{pid}",
        json={"changes": {"connections_per_minute": 2}},
        headers=writer,
    )
    assert device_scope.json()["scope"] == f"device:{pid}"

    created = client.post(
        "/v1/policies/relaxations",
        json={
            "rule": "min_tls_version",
            "value": "1.2",
            "scope": f"device:{pid}",
            "reason": REASON,
            "expires": "3d",
        },
        headers=writer,
    )
    assert created.status_code == 201, created.text
    relaxation = created.json()
    assert relaxation["status"] == "active" and relaxation["created_by"].startswith("apikey:")
    rid = relaxation["relaxation_id"]
    assert client.get(f"/v1/policies/relaxations/{rid}", headers=writer).json()["rule"] == (
        "min_tls_version"
    )

    effective = client.get(f"/v1/policies/devices/{pid}/effective", headers=writer).json()
    assert effective["policy"]["min_tls_version"] == "1.2"
    assert effective["policy"]["connections_per_minute"] == 2
    assert effective["sources"]["connections_per_minute"] == f"device:{pid}"
    assert effective["valid_until"] == relaxation["expires_at"]

    posture = client.get("/v1/posture", headers=writer).json()
    assert posture["units"] == 1 and [r["relaxation_id"] for r in posture["relaxations"]] == [rid]
    device = client.get("/v1/posture", params={"device": pid}, headers=writer).json()
    statuses = {m["measure"]: m["status"] for m in device["measures"]}
    assert statuses["secure_communication"] == "relaxed"
    assert statuses["signed_firmware_and_patch_level"] == "unknown"

    clock.advance(timedelta(days=3))
    assert client.get("/v1/policies/relaxations", headers=writer).json()["items"] == []
    lapsed = client.get("/v1/policies/relaxations", params={"status": "lapsed"}, headers=writer)
    assert [r["relaxation_id"] for r in lapsed.json()["items"]] == [rid]
    after = client.get(f"/v1/policies/devices/{pid}/effective", headers=writer).json()
    assert after["policy"]["min_tls_version"] == "1.3" and after["relaxations"] == []
    assert_problem(
        client.post(
            f"/v1/policies/relaxations/{rid}/revoke",
            json={"reason": "too late now"},
            headers=writer,
        ),
        409,
        "policy.relaxation_inactive",
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        (
            "patch",
            "/v1/policies/fleet",
            {"changes": {"min_tls_version": "1.2"}},
            409,
            "policy.weakens",
        ),
        (
            "patch",
            "/v1/policies/fleet",
            {"changes": {"rsa_min_bits": 512}},
            400,
            "policy.out_of_range",
        ),
        ("patch", "/v1/policies/fleet", {"changes": {}}, 400, "policy.no_change"),
        (
            "patch",
            "/v1/policies/fleet",
            {"changes": {"x": 1}, "extra": 1},
            422,
            "request.invalid_body",
        ),
        (
            "patch",
            "/v1/policies/galaxy",
            {"changes": {"clock_skew": "1m"}},
            400,
            "policy.invalid_scope",
        ),
        (
            "patch",
            "/v1/policies/enrollment:none",
            {"changes": {"clock_skew": "1m"}},
            404,
            "policy.unknown_enrollment",
        ),
        (
            "post",
            "/v1/policies/relaxations",
            {"rule": "min_tls_version", "value": "1.2", "expires": "1d"},
            400,
            "policy.reason_required",
        ),
        (
            "post",
            "/v1/policies/relaxations",
            {"rule": "min_tls_version", "value": "1.2", "reason": REASON},
            400,
            "policy.expiry_required",
        ),
        (
            "post",
            "/v1/policies/relaxations",
            {"rule": "min_tls_version", "value": "1.2", "reason": REASON, "expires": "365d"},
            400,
            "policy.expiry_too_far",
        ),
        (
            "post",
            "/v1/policies/relaxations/not-a-uuid/revoke",
            {"reason": "because of it"},
            400,
            "policy.invalid_relaxation_id",
        ),
        (
            "get",
            "/v1/policies/devices/c2c38155-b0d2-48b6-82fd-22fe3b316224/effective",
            None,
            404,
            "identity.physical_not_found",
        ),
        ("get", "/v1/posture?device=nope", None, 400, "identity.invalid_physical_id"),
    ],
)
def test_bad_requests_are_problems_and_change_nothing(
    client: TestClient,
    writer: dict[str, str],
    db: Database,
    method: str,
    path: str,
    body: dict[str, object] | None,
    status: int,
    code: str,
) -> None:
    before = snapshot_tables(db)
    kwargs = {"json": body} if body is not None else {}
    response = client.request(method.upper(), path, headers=writer, **kwargs)  # type: ignore[arg-type]
    assert_problem(response, status, code)
    assert snapshot_tables(db) == before

"""`/v1/attestation/...` over a real Platform (SQLite and PostgreSQL): golden measurements
added, read, listed and revoked; a unit's boot attestations newest first; scopes enforced;
refusals as problem+json bodies that change nothing; the routes described in OpenAPI."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from devicetrust.auth import Scope
from devicetrust.domain import FixedClock
from devicetrust.runtime import Platform
from devicetrust.store.database import Database
from tests.api.wire import assert_problem
from tests.attestation.conftest import boot, hexed, measurement
from tests.conftest import snapshot_tables
from tests.operator_api import key

GOLDEN = "/v1/attestation/golden"
REASON = "boot loader CVE, fixed in 2.4.2"


def test_scopes_are_enforced(
    client: TestClient, platform: Platform, reader: dict[str, str], pid: str
) -> None:
    body = {"name": "arm-fw-2.4.1", "pcrs": hexed(boot())}
    assert_problem(client.get(GOLDEN), 401, "auth.missing_key")
    assert_problem(client.post(GOLDEN, json=body), 401, "auth.missing_key")
    identity_only = key(platform, Scope.IDENTITY_READ, Scope.IDENTITY_WRITE)
    for response in (
        client.get(GOLDEN, headers=identity_only),
        client.get(f"/v1/attestation/devices/{pid}", headers=identity_only),
        client.post(GOLDEN, json=body, headers=reader),
        client.post(f"{GOLDEN}/arm-fw-2.4.1/revoke", json={"reason": REASON}, headers=reader),
    ):
        assert_problem(response, 403, "auth.insufficient_scope")
    assert client.get(GOLDEN, headers=reader).json() == {"items": []}
    assert client.get(f"/v1/attestation/devices/{pid}", headers=reader).status_code == 200


def test_add_get_list_and_revoke(
    client: TestClient,
    platform: Platform,
    clock: FixedClock,
    writer: dict[str, str],
    reader: dict[str, str],
) -> None:
    body = {"name": "arm-fw-2.4.1", "pcrs": hexed(boot()), "note": "line 3"}
    created = client.post(GOLDEN, json=body, headers=writer)
    assert created.status_code == 201, created.text
    golden = created.json()
    assert golden["pcrs"] == hexed(boot()) and golden["active"] is True
    assert golden["note"] == "line 3" and golden["created_by"].startswith("apikey:")
    assert client.get(f"{GOLDEN}/arm-fw-2.4.1", headers=reader).json() == golden
    upper = {"name": "upper-case", "pcrs": {"7": "0x" + boot()[7].hex().upper()}}
    assert_problem(client.post(GOLDEN, json=upper, headers=writer), 400, "attestation.invalid_pcrs")
    upper["pcrs"] = {"7": boot()[7].hex().upper()}
    assert client.post(GOLDEN, json=upper, headers=writer).json()["pcrs"] == {"7": boot()[7].hex()}
    listed = client.get(GOLDEN, headers=reader).json()["items"]
    assert [g["name"] for g in listed] == ["arm-fw-2.4.1", "upper-case"]

    clock.advance(timedelta(days=1))
    revoked = client.post(f"{GOLDEN}/arm-fw-2.4.1/revoke", json={"reason": REASON}, headers=writer)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["active"] is False and revoked.json()["revoke_reason"] == REASON
    assert revoked.json()["revoked_at"].startswith(clock.now().isoformat()[:19])
    assert [g["name"] for g in client.get(GOLDEN, headers=reader).json()["items"]] == ["upper-case"]
    everything = client.get(GOLDEN, params={"include_revoked": True}, headers=reader).json()
    assert [(g["name"], g["active"]) for g in everything["items"]] == [
        ("arm-fw-2.4.1", False),
        ("upper-case", True),
    ]
    assert client.get(f"{GOLDEN}/arm-fw-2.4.1", headers=reader).json() == revoked.json()
    assert [g.name for g in platform.attestation.goldens()] == ["upper-case"]


def test_refusals_are_problems_that_change_nothing(
    client: TestClient, db: Database, writer: dict[str, str], pid: str
) -> None:
    for path, body in [
        (GOLDEN, {"name": "g", "pcrs": hexed(boot())}),
        (f"{GOLDEN}/g/revoke", {"reason": REASON}),
        (GOLDEN, {"name": "live", "pcrs": {"7": "00" * 32}}),
    ]:
        assert client.post(path, json=body, headers=writer).is_success
    before = snapshot_tables(db)
    pcrs = hexed(boot())
    requests = [
        ("post", GOLDEN, {"name": "g", "pcrs": pcrs}, 409, "attestation.golden_exists"),
        ("post", f"{GOLDEN}/g/revoke", {"reason": REASON}, 409, "attestation.golden_revoked"),
        ("post", f"{GOLDEN}/nope/revoke", {"reason": REASON}, 404, "attestation.golden_not_found"),
        ("post", f"{GOLDEN}/live/revoke", {"reason": " "}, 400, "attestation.reason_required"),
        ("post", f"{GOLDEN}/live/revoke", {}, 400, "attestation.reason_required"),
        ("post", f"{GOLDEN}/live/revoke", {"reason": "x" * 1001}, 422, "request.invalid_body"),
        ("get", f"{GOLDEN}/nope", None, 404, "attestation.golden_not_found"),
        ("post", GOLDEN, {"name": "h", "pcrs": {"24": pcrs["0"]}}, 400, "attestation.invalid_pcrs"),
        ("post", GOLDEN, {"name": "h", "pcrs": {"0": "ab"}}, 400, "attestation.invalid_pcrs"),
        ("post", GOLDEN, {"name": " h", "pcrs": pcrs}, 400, "attestation.invalid_name"),
        ("post", GOLDEN, {"name": "h"}, 422, "request.invalid_body"),
        (
            "post",
            GOLDEN,
            {"name": "h", "pcrs": pcrs, "from_unit": pid},
            422,
            "request.invalid_body",
        ),
        ("post", GOLDEN, {"name": "h", "pcrs": pcrs, "admin": True}, 422, "request.invalid_body"),
        ("post", GOLDEN, {"name": "h", "from_unit": pid}, 404, "attestation.no_attestation"),
        ("get", "/v1/attestation/devices/not-a-uuid", None, 400, "identity.invalid_physical_id"),
        (
            "get",
            "/v1/attestation/devices/5d7e0c0e-0000-4000-8000-000000000000",
            None,
            404,
            "identity.physical_not_found",
        ),
    ]
    for method, path, body, status, code in requests:
        response = client.request(method, path, json=body, headers=writer)
        assert_problem(response, status, code)
    assert snapshot_tables(db) == before


def test_a_units_boot_attestations_newest_first_and_a_golden_from_it(
    client: TestClient,
    platform: Platform,
    clock: FixedClock,
    writer: dict[str, str],
    reader: dict[str, str],
    pid: str,
) -> None:
    path = f"/v1/attestation/devices/{pid}"
    assert client.get(path, headers=reader).json() == {"physical_id": pid, "items": []}
    # what the TPM method records once a quote verified (provisioning, EST re-enrollment)
    platform.attestation.record(pid, boot(), source="provisioning")
    clock.advance(timedelta(hours=1))
    updated = boot(pcr0=measurement("uefi 2.4.2"))
    platform.attestation.record(pid, updated, source="provisioning")

    created = client.post(
        GOLDEN, json={"name": "arm-fw-2.4.2", "from_unit": pid.upper()}, headers=writer
    )
    assert created.status_code == 201, created.text
    assert created.json()["pcrs"] == hexed(updated) and pid in created.json()["note"]
    clock.advance(timedelta(hours=1))
    platform.attestation.record(pid, updated, source="est")

    shown = client.get(f"/v1/attestation/devices/{pid.upper()}", headers=reader)
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["physical_id"] == pid
    assert [(a["verdict"], a["golden"]) for a in body["items"]] == [
        ("matched", "arm-fw-2.4.2"),
        ("no_golden_measurements", None),
        ("no_golden_measurements", None),
    ]
    assert body["items"][0]["pcrs"] == hexed(updated)
    assert body["items"][0]["attested_at"].startswith(clock.now().isoformat()[:19])
    one = client.get(path, params={"limit": 1}, headers=reader).json()["items"]
    assert one == body["items"][:1]
    for bad in (0, 1001, "x"):
        response = client.get(path, params={"limit": bad}, headers=reader)
        assert_problem(response, 400, "request.invalid_parameter")


def test_openapi_describes_the_routes_and_their_permission(
    client: TestClient, reader: dict[str, str]
) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    expected = {
        "/v1/attestation/golden": {"get", "post"},
        "/v1/attestation/golden/{name}": {"get"},
        "/v1/attestation/golden/{name}/revoke": {"post"},
        "/v1/attestation/devices/{physical_id}": {"get"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) == methods, path
        for method in methods:
            operation = paths[path][method]
            assert operation["security"] == [{"bearerApiKey": []}, {"headerApiKey": []}]
            assert operation["tags"] == ["measured boot"]
            assert "application/problem+json" in operation["responses"]["403"]["content"]
    add = paths["/v1/attestation/golden"]["post"]
    assert add["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/GoldenIn"
    }
    assert set(add["responses"]) >= {"201", "400", "404", "409", "422"}
    schemas = document["components"]["schemas"]
    assert set(schemas["GoldenIn"]["properties"]) == {"name", "pcrs", "from_unit", "note"}
    assert schemas["BootAttestationOut"]["properties"]["verdict"] == {
        "$ref": "#/components/schemas/BootVerdict"
    }
    assert schemas["BootVerdict"]["enum"] == [
        "matched",
        "unknown_measurements",
        "no_golden_measurements",
    ]

"""`GET /v1/data/diagnostics/{logical_name}` and `/v1/data/telemetry/{physical_id}`: one
history across a replacement, one unit's telemetry, time windows, refusals (SQLite and
PostgreSQL)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from devicetrust.auth import Scope
from devicetrust.store.database import Database
from tests.api.wire import assert_problem
from tests.conftest import snapshot_tables
from tests.data.conftest import NAME, OTHER, Fleet, MintKey

DIAG = "/v1/data/diagnostics"
TELE = "/v1/data/telemetry"


def test_diagnostics_are_one_history_across_a_replacement(
    client: TestClient, mint: MintKey, fleet: Fleet
) -> None:
    reader = mint(Scope.DATA_READ)
    items = client.get(f"{DIAG}/{NAME}", headers=reader).json()["items"]
    assert [(m["physical_id"], m["payload"]) for m in items] == [
        (fleet.new, {"parts_per_hour": 121}),
        (fleet.old, {"parts_per_hour": 118}),
    ]
    assert {m["kind"] for m in items} == {"diagnostics"}
    assert {m["logical_name"] for m in items} == {NAME}
    assert items[0]["received_at"] == "2026-11-25T07:50:00Z"

    assert [m["physical_id"] for m in client.get(
        f"{DIAG}/{NAME}", params={"since": "1h"}, headers=reader).json()["items"]] == [fleet.new]
    assert [m["physical_id"] for m in client.get(
        f"{DIAG}/{NAME}", params={"until": "1h"}, headers=reader).json()["items"]] == [fleet.old]
    window = {"since": "2026-11-25T05:00Z", "until": "2026-11-25T06:00:00.001+00:00"}
    assert len(client.get(f"{DIAG}/{NAME}", params=window, headers=reader).json()["items"]) == 1
    limited = client.get(f"{DIAG}/{NAME}", params={"limit": 1}, headers=reader).json()["items"]
    assert [m["physical_id"] for m in limited] == [fleet.new]
    assert client.get(f"{DIAG}/{OTHER}", headers=reader).json() == {"items": []}


def test_telemetry_is_the_units_own(client: TestClient, mint: MintKey, fleet: Fleet) -> None:
    reader = mint(Scope.DATA_READ)
    old = client.get(f"{TELE}/{fleet.old}", headers=reader).json()["items"]
    assert [(m["physical_id"], m["payload"], m["logical_name"]) for m in old] == [
        (fleet.old, {"torque": [1.5]}, NAME)
    ]
    new = client.get(f"{TELE}/{fleet.new}", params={"since": "15m"}, headers=reader).json()
    assert [m["payload"] for m in new["items"]] == [{"torque": [0.9]}]
    assert client.get(f"{TELE}/{fleet.free}", headers=reader).json() == {"items": []}
    # Upper-case ids are canonicalised, like everywhere else.
    upper = client.get(f"{TELE}/{fleet.old.upper()}", headers=reader).json()["items"]
    assert [m["physical_id"] for m in upper] == [fleet.old]


BAD: list[tuple[str, dict[str, str | int], int, str]] = [
    (f"{DIAG}/Not_A_Name!", {}, 400, "identity.invalid_name"),
    (f"{DIAG}/line-99-z", {}, 404, "identity.logical_not_found"),
    (f"{DIAG}/{NAME}", {"since": "yesterday"}, 400, "ingest.bad_time"),
    (f"{DIAG}/{NAME}", {"since": "2026-11-25T07:00"}, 400, "ingest.bad_time"),
    (f"{DIAG}/{NAME}", {"since": "1h", "until": "2h"}, 400, "ingest.bad_window"),
    (f"{DIAG}/{NAME}", {"limit": 0}, 400, "request.invalid_parameter"),
    (f"{DIAG}/{NAME}", {"limit": 1001}, 400, "request.invalid_parameter"),
    (f"{DIAG}/{NAME}", {"since": "x" * 65}, 400, "request.invalid_parameter"),
    (f"{TELE}/robot-1", {}, 400, "identity.invalid_physical_id"),
    (f"{TELE}/c2c38155-b0d2-48b6-82fd-22fe3b316224", {}, 404, "identity.physical_not_found"),
    (f"{TELE}/c2c38155-b0d2-48b6-82fd-22fe3b316224", {"until": "-1h"}, 400, "ingest.bad_time"),
]


@pytest.mark.parametrize(("path", "params", "status", "code"), BAD)
def test_bad_queries_are_refused_and_change_nothing(
    client: TestClient, mint: MintKey, fleet: Fleet, db: Database,
    path: str, params: dict[str, str | int], status: int, code: str,
) -> None:
    reader = mint(Scope.DATA_READ)
    before = snapshot_tables(db)
    assert_problem(client.get(path, params=params, headers=reader), status, code)
    assert snapshot_tables(db) == before


def test_reading_data_needs_the_data_read_scope(
    client: TestClient, mint: MintKey, fleet: Fleet
) -> None:
    others = mint(*(s for s in Scope if s not in (Scope.DATA_READ, Scope.ADMIN)))
    for path in (f"{DIAG}/{NAME}", f"{TELE}/{fleet.old}"):
        assert_problem(client.get(path), 401, "auth.missing_key")
        assert_problem(client.get(path, headers=others), 403, "auth.insufficient_scope")
        assert client.get(path, headers=mint(Scope.ADMIN)).status_code == 200

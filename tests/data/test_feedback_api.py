"""`POST /v1/feedback/{logical_name}`, `GET /v1/feedback/{id}`, `GET /v1/feedback?logical_name=`:
queue, status, listing, refusals that change nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from devicetrust.auth import Scope
from devicetrust.domain import FixedClock
from devicetrust.store.database import Database
from tests.api.wire import assert_problem
from tests.conftest import snapshot_tables
from tests.data.conftest import MAX_BODY, NAME, OTHER, Fleet, MintKey

FEEDBACK = "/v1/feedback"
UNKNOWN = "5f0c9c8e-6c1e-4d6f-9a53-0d8f1b7c2a10"


def test_send_show_and_list(
    client: TestClient, mint: MintKey, fleet: Fleet, clock: FixedClock
) -> None:
    writer, reader = mint(Scope.DATA_WRITE), mint(Scope.DATA_READ)
    sent = client.post(
        f"{FEEDBACK}/{NAME}", json={"payload": {"speed": 0.8}, "ttl": "30m"}, headers=writer
    )
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert body["status"] == "pending" and body["payload"] == {"speed": 0.8}
    assert body["logical_name"] == NAME and body["physical_id"] is None
    assert body["expires_at"] == (clock.now() + timedelta(minutes=30)).isoformat().replace(
        "+00:00", "Z"
    )
    shown = client.get(f"{FEEDBACK}/{body['feedback_id']}", headers=reader)
    assert shown.status_code == 200 and shown.json() == body

    clock.advance(timedelta(seconds=1))
    later = client.post(f"{FEEDBACK}/{NAME}", json={"payload": {"n": 2}}, headers=writer).json()
    assert later["expires_at"] == (clock.now() + timedelta(hours=1)).isoformat().replace(
        "+00:00", "Z"
    )  # the default time to live
    listed = client.get(FEEDBACK, params={"logical_name": NAME}, headers=reader).json()["items"]
    assert [f["feedback_id"] for f in listed] == [later["feedback_id"], body["feedback_id"]]
    one = client.get(FEEDBACK, params={"logical_name": NAME, "limit": 1}, headers=reader)
    assert [f["feedback_id"] for f in one.json()["items"]] == [later["feedback_id"]]
    assert client.get(FEEDBACK, params={"logical_name": OTHER}, headers=reader).json() == {
        "items": []
    }


BAD_SENDS: list[tuple[str, Any, int, str]] = [
    (NAME, {"payload": {"a": 1}, "ttl": "soon"}, 400, "ingest.bad_ttl"),
    (NAME, {"payload": {"a": 1}, "ttl": 0}, 400, "ingest.bad_ttl"),
    (NAME, {"payload": {"a": 1}, "ttl": "31d"}, 400, "ingest.bad_ttl"),
    (NAME, {"payload": [1, 2]}, 422, "request.invalid_body"),
    (NAME, {"payload": "text"}, 422, "request.invalid_body"),
    (NAME, {"ttl": "1h"}, 422, "request.invalid_body"),
    (NAME, {"payload": {}, "extra": 1}, 422, "request.invalid_body"),
    (NAME, {"payload": {"blob": "x" * MAX_BODY}}, 413, "request.body_too_large"),
    ("line-99-z", {"payload": {"a": 1}}, 404, "identity.logical_not_found"),
    ("Not_A_Name!", {"payload": {"a": 1}}, 400, "identity.invalid_name"),
]


@pytest.mark.parametrize(("name", "body", "status", "code"), BAD_SENDS)
def test_bad_sends_are_refused_and_change_nothing(
    client: TestClient, mint: MintKey, fleet: Fleet, db: Database,
    name: str, body: Any, status: int, code: str,
) -> None:
    writer = mint(Scope.DATA_WRITE)
    before = snapshot_tables(db)
    assert_problem(client.post(f"{FEEDBACK}/{name}", json=body, headers=writer), status, code)
    assert snapshot_tables(db) == before


def test_nan_and_non_json_bodies_are_refused(
    client: TestClient, mint: MintKey, fleet: Fleet, db: Database
) -> None:
    writer = {**mint(Scope.DATA_WRITE), "Content-Type": "application/json"}
    before = snapshot_tables(db)
    # Python's JSON decoder takes NaN; the queue refuses it (it is not JSON a device can read).
    nan = client.post(f"{FEEDBACK}/{NAME}", content=b'{"payload": {"x": NaN}}', headers=writer)
    assert_problem(nan, 400, "ingest.feedback_not_json")
    broken = client.post(f"{FEEDBACK}/{NAME}", content=b'{"payload": {', headers=writer)
    assert_problem(broken, 400, "request.malformed_json")
    assert snapshot_tables(db) == before


def test_the_queue_per_identity_is_capped(
    client: TestClient, mint: MintKey, fleet: Fleet, db: Database
) -> None:
    writer = mint(Scope.DATA_WRITE)
    for n in range(100):
        assert client.post(f"{FEEDBACK}/{NAME}", json={"payload": {"n": n}},
                           headers=writer).status_code == 201
    before = snapshot_tables(db)
    full = client.post(f"{FEEDBACK}/{NAME}", json={"payload": {"n": 100}}, headers=writer)
    assert_problem(full, 409, "ingest.feedback_queue_full")
    assert snapshot_tables(db) == before


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        (f"{FEEDBACK}/{UNKNOWN}", {}, 404, "ingest.feedback_not_found"),
        (f"{FEEDBACK}/not-an-id", {}, 400, "request.invalid_parameter"),
        (FEEDBACK, {}, 400, "request.invalid_parameter"),
        (FEEDBACK, {"logical_name": "line-99-z"}, 404, "identity.logical_not_found"),
        (FEEDBACK, {"logical_name": NAME, "limit": 0}, 400, "request.invalid_parameter"),
    ],
)
def test_bad_reads_are_refused(
    client: TestClient, mint: MintKey, fleet: Fleet,
    path: str, params: dict[str, Any], status: int, code: str,
) -> None:
    assert_problem(client.get(path, params=params, headers=mint(Scope.DATA_READ)), status, code)


def test_sending_needs_data_write_and_reading_data_read(
    client: TestClient, mint: MintKey, fleet: Fleet, db: Database
) -> None:
    reader, writer = mint(Scope.DATA_READ), mint(Scope.DATA_WRITE)
    before = snapshot_tables(db)
    body = {"payload": {"a": 1}}
    assert_problem(client.post(f"{FEEDBACK}/{NAME}", json=body), 401, "auth.missing_key")
    assert_problem(client.post(f"{FEEDBACK}/{NAME}", json=body, headers=reader), 403,
                   "auth.insufficient_scope")
    assert_problem(client.get(FEEDBACK, params={"logical_name": NAME}, headers=writer), 403,
                   "auth.insufficient_scope")
    assert_problem(client.get(f"{FEEDBACK}/{UNKNOWN}", headers=writer), 403,
                   "auth.insufficient_scope")
    assert snapshot_tables(db) == before

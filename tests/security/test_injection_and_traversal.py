"""Adversarial input through the API: SQL and JSON injection through names, attributes and
query filters, and path traversal through the only file name the API takes (a CA key URI).

Names are validated (a payload is a 400/422 that changes nothing); attribute values are data
(strings or lists of strings, stored and returned as sent, never interpreted; anything else
is a 4xx that changes nothing); filters are bound parameters (a
payload matches nothing rather than everything); a `file:` key URI outside the CA key
directory is refused before any file is opened, so the answer says nothing about the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from devicetrust.runtime import Platform
from tests.api.wire import assert_problem
from tests.conftest import snapshot_tables
from tests.pki.company_pki import company_ca, pem

SQL = [
    "x'; DROP TABLE bindings;--",
    "' OR '1'='1",
    '" OR ""="',
    "1; SELECT * FROM api_keys",
    "robot%' --",
    "name\x00tail",
]
JSONISH: list[Any] = [
    "'; DROP TABLE audit_entries;--",
    ["' OR 1=1 --", '"; DELETE FROM bindings; --'],
    {"$where": "1==1", "$gt": ""},
    {"__proto__": {"admin": True}, "constructor": {"prototype": {}}},
    ["\u0000", "\ud7ff", "\u202e"],
    '{"nested": "json in a string"}',
    1e308,
    -(2**53),
]


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.parametrize("payload", SQL)
def test_sql_in_a_name_is_refused_and_changes_nothing(
    client: TestClient, admin: dict[str, str], platform: Platform, payload: str
) -> None:
    before = snapshot_tables(platform.db)
    created = client.post("/v1/logical-identities", json={"name": payload}, headers=admin)
    assert created.status_code in (400, 422), created.text
    assert created.headers["content-type"].startswith("application/problem+json")
    renamed = client.post(
        "/v1/logical-identities/line-03-left-welding-12/rename",
        json={"new_name": payload},
        headers=admin,
    )
    assert renamed.status_code in (400, 422), renamed.text
    assert snapshot_tables(platform.db) == before


@pytest.mark.parametrize("value", JSONISH, ids=range(len(JSONISH)))
def test_attribute_values_are_data_or_refused(
    client: TestClient, admin: dict[str, str], platform: Platform, known: dict[str, str], value: Any
) -> None:
    path = f"/v1/logical-identities/{known['name']}"
    before = snapshot_tables(platform.db)
    stored = client.patch(path, json={"attributes": {"payload": value}}, headers=admin)
    if stored.status_code == 200:
        assert client.get(path, headers=admin).json()["attributes"]["payload"] == value
    else:
        assert stored.status_code in (400, 422), stored.text
        assert stored.headers["content-type"].startswith("application/problem+json")
        assert snapshot_tables(platform.db) == before
    assert client.get("/v1/audit/verify", headers=admin).json()["ok"] is True


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v1/audit", "subject"),
        ("/v1/pki/certificates", "physical_id"),
        ("/v1/policies/relaxations", "scope"),
    ],
)
@pytest.mark.parametrize("payload", SQL[:5])
def test_a_filter_payload_matches_nothing(
    client: TestClient, admin: dict[str, str], path: str, param: str, payload: str
) -> None:
    response = client.get(path, params={param: payload}, headers=admin)
    if response.status_code == 200:
        assert response.json()["items"] == []
    else:
        assert_problem(response, 400, response.json().get("code", ""))


@pytest.mark.parametrize(
    "uri",
    [
        "file:../../../../../../etc/passwd",
        "file:/etc/shadow",
        "file:///proc/self/environ",
        "file:%2e%2e/%2e%2e/%2e%2e/etc/hostname",
        "file:/nonexistent/key.pem",
        "FILE:///etc/passwd",
    ],
)
def test_a_key_uri_outside_the_key_directory_is_refused_unopened(
    client: TestClient, admin: dict[str, str], platform: Platform, uri: str
) -> None:
    cert, _key = company_ca(datetime(2026, 11, 25, tzinfo=UTC), "Company Root")
    before = snapshot_tables(platform.db)
    body = {"certificate_pem": pem(cert).decode(), "role": "root", "key_uri": uri}
    response = client.post("/v1/pki/cas/import", json=body, headers=admin)
    problem = assert_problem(response, 400, "pki.invalid_key_uri")
    assert "path" not in problem  # the same answer whether the file exists or not
    assert snapshot_tables(platform.db) == before

"""Regressions of the server bugs the schemathesis run found, each pinned by a request.

- A huge `offset` reached SQLite as an integer it cannot bind: 500 instead of 400.
- A 405 named only the first route of the path in `Allow` (RFC 9110 §15.5.6 wants all).
- A number was taken for an instant (`manufactured_at: 0` became 1970; `?at=0.5` too).
- Refusals the server does send were missing from the OpenAPI document: 429 of the
  provisioning routes, and every error and the 202 of the EST enrollment routes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from devicetrust.api.paging import MAX_OFFSET
from tests.api.wire import assert_problem, unit


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "path",
    [
        "/v1/physical-identities",
        "/v1/logical-identities",
        "/v1/pki/certificates",
        "/v1/enrollments",
        "/v1/enrollments/pending",
    ],
)
def test_an_offset_past_bigint_is_a_bad_request(
    client: TestClient, admin: dict[str, str], path: str
) -> None:
    assert client.get(path, params={"offset": MAX_OFFSET}, headers=admin).status_code == 200
    refused = client.get(path, params={"offset": MAX_OFFSET + 1}, headers=admin)
    assert_problem(refused, 400, "request.invalid_parameter")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/physical-identities", {"GET", "POST"}),
        ("DELETE", "/v1/logical-identities/some-name", {"GET", "PATCH"}),
        ("PATCH", "/v1/webhooks/some-id", {"GET", "DELETE"}),
    ],
)
def test_a_405_names_every_method_of_the_path(
    client: TestClient, admin: dict[str, str], method: str, path: str, allowed: set[str]
) -> None:
    response = client.request(method, path, headers=admin)
    assert_problem(response, 405, "request.method_not_allowed")
    listed = {m.strip() for m in response.headers["allow"].split(",")}
    assert listed - {"HEAD"} == allowed


@pytest.mark.parametrize("instant", [0, 1.5, "1700000000", "0.5", True])
def test_a_number_is_not_an_instant_in_a_body(
    client: TestClient, admin: dict[str, str], instant: Any
) -> None:
    body = {**unit(controller="C-instant"), "manufactured_at": instant}
    refused = client.post("/v1/physical-identities", json=body, headers=admin)
    assert_problem(refused, 422, "request.invalid_body")


def test_a_number_is_not_an_instant_in_a_query(
    client: TestClient, admin: dict[str, str], known: dict[str, str]
) -> None:
    history = f"/v1/logical-identities/{known['name']}/history"
    assert_problem(
        client.get(history, params={"at": "0.5"}, headers=admin), 400, "request.invalid_parameter"
    )
    held = client.get(history, params={"at": "2026-11-25T09:00:00+00:00"}, headers=admin)
    assert held.status_code == 200, held.text
    assert held.json()["holder"]["physical_id"] == known["physical_id"]


def test_the_document_declares_the_refusals_the_server_sends(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "429" in paths["/v1/provisioning/register"]["post"]["responses"]
    for route in ("simpleenroll", "simplereenroll"):
        responses = paths[f"/.well-known/est/{route}"]["post"]["responses"]
        assert {"200", "202", "400", "401", "413", "415", "429"} <= responses.keys()
        assert "application/problem+json" in responses["401"]["content"]

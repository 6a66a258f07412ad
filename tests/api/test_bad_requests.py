"""Bad input through HTTP: a precise problem+json, and the database exactly as before."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Fleet
from tests.api.wire import NAME, assert_problem, unit

BASE = "/v1/physical-identities"
LOGICAL = "/v1/logical-identities"
UNKNOWN_ID = str(uuid.uuid4())


Request = Callable[[Fleet], tuple[str, str, Any]]

# (request, expected status, expected code); the request is (method, path, json body).
CASES: dict[str, tuple[Request, int, str]] = {
    "malformed logical name": (
        lambda f: ("POST", LOGICAL, {"name": "Line_03 Left"}),
        400,
        "identity.invalid_name",
    ),
    "name with double dot": (
        lambda f: ("POST", LOGICAL, {"name": "a..b"}),
        400,
        "identity.invalid_name",
    ),
    "malformed name in path": (
        lambda f: ("GET", f"{LOGICAL}/UPPER", None),
        400,
        "identity.invalid_name",
    ),
    "over-long name in path": (
        lambda f: ("GET", f"{LOGICAL}/{'a' * 129}", None),
        400,
        "identity.invalid_name",
    ),
    "malformed physical id": (
        lambda f: ("GET", f"{BASE}/not-a-uuid", None),
        400,
        "identity.invalid_physical_id",
    ),
    "non-v4 physical id": (
        lambda f: ("GET", f"{BASE}/{uuid.uuid1()}", None),
        400,
        "identity.invalid_physical_id",
    ),
    "unknown physical id": (
        lambda f: ("GET", f"{BASE}/{UNKNOWN_ID}", None),
        404,
        "identity.physical_not_found",
    ),
    "bind unknown unit": (
        lambda f: ("POST", f"{LOGICAL}/spare-name/bind", {"physical_id": UNKNOWN_ID}),
        404,
        "identity.physical_not_found",
    ),
    "unknown logical name": (
        lambda f: ("GET", f"{LOGICAL}/no-such-robot", None),
        404,
        "identity.logical_not_found",
    ),
    "duplicate logical name": (
        lambda f: ("POST", LOGICAL, {"name": NAME}),
        409,
        "identity.name_taken",
    ),
    "rename onto a taken name": (
        lambda f: ("POST", f"{LOGICAL}/spare-name/rename", {"new_name": NAME}),
        409,
        "identity.name_taken",
    ),
    "double binding of the identity": (
        lambda f: ("POST", f"{LOGICAL}/{NAME}/bind", {"physical_id": f.free}),
        409,
        "identity.already_bound",
    ),
    "double binding of the unit": (
        lambda f: ("POST", f"{LOGICAL}/spare-name/bind", {"physical_id": f.bound}),
        409,
        "identity.unit_already_bound",
    ),
    "binding a quarantined unit": (
        lambda f: ("POST", f"{LOGICAL}/spare-name/bind", {"physical_id": f.quarantined}),
        409,
        "identity.unit_not_live",
    ),
    "unbinding a free identity": (
        lambda f: ("POST", f"{LOGICAL}/spare-name/unbind", None),
        409,
        "identity.not_bound",
    ),
    "replace with itself": (
        lambda f: ("POST", f"{LOGICAL}/{NAME}/replace", {"new_physical_id": f.bound}),
        400,
        "identity.replace_same_unit",
    ),
    "replace a stale holder": (
        lambda f: (
            "POST",
            f"{LOGICAL}/{NAME}/replace",
            {"new_physical_id": f.free, "old_physical_id": f.quarantined},
        ),
        409,
        "identity.replacement_conflict",
    ),
    "invalid transition": (
        lambda f: ("POST", f"{BASE}/{f.free}/state", {"state": "active"}),
        409,
        "lifecycle.invalid_transition",
    ),
    "quarantine left without release": (
        lambda f: ("POST", f"{BASE}/{f.quarantined}/state", {"state": "suspended"}),
        409,
        "lifecycle.quarantine_needs_release",
    ),
    "release of a unit not in quarantine": (
        lambda f: ("POST", f"{BASE}/{f.free}/release", {"reason": "x"}),
        409,
        "lifecycle.not_quarantined",
    ),
    "unknown state": (
        lambda f: ("POST", f"{BASE}/{f.free}/state", {"state": "exploded"}),
        422,
        "request.invalid_body",
    ),
    "unknown field": (
        lambda f: ("POST", BASE, {**unit(), "owner": "mallory"}),
        422,
        "request.invalid_body",
    ),
    "missing field": (
        lambda f: ("POST", BASE, {"hardware_serials": {}}),
        422,
        "request.invalid_body",
    ),
    "wrong type": (
        lambda f: ("POST", BASE, {"model": 7}),
        422,
        "request.invalid_body",
    ),
    "over-long model": (
        lambda f: ("POST", BASE, unit("m" * 129)),
        422,
        "request.invalid_body",
    ),
    "naive manufacturing time": (
        lambda f: ("POST", BASE, {**unit(), "manufactured_at": "2026-01-01T00:00:00"}),
        422,
        "request.invalid_body",
    ),
    "empty batch": (
        lambda f: ("POST", f"{BASE}/batch", {"units": []}),
        422,
        "request.invalid_body",
    ),
    "batch with one bad unit": (
        lambda f: ("POST", f"{BASE}/batch", {"units": [unit(), unit(""), unit()]}),
        422,
        "request.invalid_body",
    ),
    "bad attribute name": (
        lambda f: ("PATCH", f"{LOGICAL}/{NAME}", {"attributes": {"Bad Key": "x"}}),
        400,
        "identity.invalid_attributes",
    ),
    "non-string attribute": (
        lambda f: ("PATCH", f"{LOGICAL}/{NAME}", {"attributes": {"site": 3}}),
        422,
        "request.invalid_body",
    ),
    "over-long replacement reason": (
        lambda f: (
            "POST",
            f"{LOGICAL}/{NAME}/replace",
            {"new_physical_id": f.free, "reason": "r" * 65},
        ),
        422,
        "request.invalid_body",
    ),
    "bad fate": (
        lambda f: (
            "POST",
            f"{LOGICAL}/{NAME}/replace",
            {"new_physical_id": f.free, "fate": "recycled"},
        ),
        422,
        "request.invalid_body",
    ),
    "limit out of range": (
        lambda f: ("GET", f"{BASE}?limit=0", None),
        400,
        "request.invalid_parameter",
    ),
    "limit not a number": (
        lambda f: ("GET", f"{LOGICAL}?limit=ten", None),
        400,
        "request.invalid_parameter",
    ),
    "history at a naive time": (
        lambda f: ("GET", f"{LOGICAL}/{NAME}/history?at=2026-11-25T08:00:00", None),
        400,
        "request.invalid_parameter",
    ),
    "history at garbage": (
        lambda f: ("GET", f"{LOGICAL}/{NAME}/history?at=yesterday", None),
        400,
        "request.invalid_parameter",
    ),
    "webhook with a non-http url": (
        lambda f: ("POST", "/v1/webhooks", {"url": "ftp://example.com/hook"}),
        400,
        "webhook.url_scheme_not_allowed",
    ),
    "webhook with an unknown event": (
        lambda f: (
            "POST",
            "/v1/webhooks",
            {"url": "https://example.com/h", "event_types": ["device.explode"]},
        ),
        400,
        "webhook.unknown_event_type",
    ),
    "unknown webhook": (
        lambda f: ("DELETE", f"/v1/webhooks/{UNKNOWN_ID}", None),
        404,
        "webhook.not_found",
    ),
    "malformed webhook id": (
        lambda f: ("GET", "/v1/webhooks/nope", None),
        400,
        "webhook.invalid_id",
    ),
    "redeliver an unknown delivery": (
        lambda f: ("POST", "/v1/webhooks/deliveries/999/redeliver", None),
        404,
        "webhook.delivery_not_found",
    ),
    "api key with an unknown scope": (
        lambda f: ("POST", "/v1/api-keys", {"name": "x", "scopes": ["root"]}),
        422,
        "request.invalid_body",
    ),
    "revoke an unknown api key": (
        lambda f: ("DELETE", "/v1/api-keys/0123456789ab", None),
        404,
        "auth.key_not_found",
    ),
    "revoke a malformed api key id": (
        lambda f: ("DELETE", "/v1/api-keys/DROP-TABLE", None),
        400,
        "auth.invalid_key_id",
    ),
    "unknown route": (lambda f: ("GET", "/v1/robots", None), 404, "request.not_found"),
    "wrong method": (lambda f: ("PUT", f"{LOGICAL}/{NAME}", {}), 405, "request.method_not_allowed"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_request_is_refused_precisely_and_changes_nothing(
    client: TestClient, writer: dict[str, str], fleet: Fleet, unchanged: None, case: str
) -> None:
    build, status, code = CASES[case]
    method, path, body = build(fleet)
    kwargs: dict[str, Any] = {"headers": writer}
    if body is not None:
        kwargs["json"] = body
    problem = assert_problem(client.request(method, path, **kwargs), status, code)
    if status == 422:
        assert problem["errors"] and all("loc" in e and "msg" in e for e in problem["errors"])


def test_validation_errors_name_the_fields(
    client: TestClient, writer: dict[str, str], unchanged: None
) -> None:
    response = client.post(BASE, json={"model": "", "colour": "red"}, headers=writer)
    problem = assert_problem(response, 422, "request.invalid_body")
    assert {tuple(e["loc"]) for e in problem["errors"]} == {
        ("body", "model"),
        ("body", "colour"),
    }
    assert "model" in problem["detail"] and "colour" in problem["detail"]


def test_wrong_method_names_the_allowed_ones(
    client: TestClient, writer: dict[str, str], unchanged: None
) -> None:
    response = client.put(f"{BASE}/{UNKNOWN_ID}", headers=writer)
    assert_problem(response, 405, "request.method_not_allowed")
    assert "GET" in response.headers["allow"]

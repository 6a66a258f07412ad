"""What the API tests send and check on the wire: credentials, payloads, problem bodies."""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM_TYPE = "application/problem+json"
NAME = "line-03-left-welding-12"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unit(model: str = "kuka-kr-16", **serials: str) -> dict[str, Any]:
    return {"model": model, "hardware_serials": serials or {"controller": "C-1"}}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is a problem+json of `status` with `code`; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_TYPE), response.headers
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["type"] == f"urn:devicetrust:problem:{code}"
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body

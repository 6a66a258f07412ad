"""Every error is problem+json, and an error tells the client no more than it should."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from devicetrust.api.security import allow_insecure
from devicetrust.domain.errors import ConfigurationError
from tests.api.wire import assert_problem


def _add_failing_routes(app: FastAPI) -> None:
    open_route = [allow_insecure("test route")]

    @app.get("/boom", dependencies=open_route)
    def boom() -> None:
        raise RuntimeError("database password is hunter2")

    @app.get("/misconfigured", dependencies=open_route)
    def misconfigured() -> None:
        raise ConfigurationError("config.kek_missing", "no KEK in /etc/devicetrust/kek")


def test_a_bug_is_a_500_problem_that_reveals_nothing(app: FastAPI) -> None:
    _add_failing_routes(app)
    client = TestClient(app, raise_server_exceptions=False)
    response = client.get("/boom")
    body = assert_problem(response, 500, "internal.error")
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    assert set(body) == {"type", "title", "status", "detail", "code"}


def test_a_configuration_error_keeps_its_code_but_not_its_detail(app: FastAPI) -> None:
    _add_failing_routes(app)
    client = TestClient(app, raise_server_exceptions=False)
    response = client.get("/misconfigured")
    assert_problem(response, 500, "config.kek_missing")
    assert "/etc/devicetrust" not in response.text


def test_framework_errors_are_problems_too(client: TestClient) -> None:
    assert_problem(client.get("/nowhere"), 404, "request.not_found")
    assert_problem(client.delete("/healthz"), 405, "request.method_not_allowed")
    assert_problem(client.get("/v1/physical-identities"), 401, "auth.missing_key")

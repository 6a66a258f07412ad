"""`allowed_networks` on the device routes: a unit proven by its credential but calling from
outside its policy's networks gets 403 `auth.network_not_allowed`, audited with the source;
from inside, it is served. In-process on SQLite and PostgreSQL, the peer address set on the
ASGI scope as uvicorn sets it."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from devicetrust.api import create_app
from devicetrust.runtime import Platform
from devicetrust.store.models import AuditEntryRow
from tests.api.wire import assert_problem
from tests.credentials.conftest import ACTOR, Env, device_jwt, refusal_codes, registered_key

ME = "/v1/device/me"


def _from(platform: Platform, address: str) -> TestClient:
    return TestClient(create_app(platform), client=(address, 40000))


def _restrict(env: Env) -> None:
    env.platform.policy.set(f"device:{env.pid}", {"allowed_networks": ["10.3.0.0/16"]}, actor=ACTOR)


def test_a_device_outside_its_networks_is_refused_and_audited(env: Env) -> None:
    _restrict(env)
    key = registered_key(env.platform, env.pid)
    token = device_jwt(env.platform, env.pid, key)

    with _from(env.platform, "192.0.2.7") as client:
        response = client.get(ME, headers={"Authorization": f"Bearer {token}"})

    body = assert_problem(response, 403, "auth.network_not_allowed")
    assert "network" in body["detail"] and "10.3" not in body["detail"]
    assert refusal_codes(env.platform.db) == ["auth.network_not_allowed"]
    with env.platform.db.read() as session:
        entry = session.execute(
            select(AuditEntryRow).where(AuditEntryRow.action == "device.auth_refused")
        ).scalar_one()
    assert entry.details["source"] == "192.0.2.7"
    assert entry.details["method"] == "jwt"


def test_a_device_inside_its_networks_is_served(env: Env) -> None:
    _restrict(env)
    key = registered_key(env.platform, env.pid)

    for address in ("10.3.4.5", "::ffff:10.3.0.9"):  # IPv4-mapped IPv6 is judged as IPv4
        token = device_jwt(env.platform, env.pid, key)
        with _from(env.platform, address) as client:
            response = client.get(ME, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
    assert refusal_codes(env.platform.db) == []


def test_without_a_restriction_any_source_is_served(env: Env) -> None:
    key = registered_key(env.platform, env.pid)
    token = device_jwt(env.platform, env.pid, key)
    with _from(env.platform, "203.0.113.9") as client:
        response = client.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text

"""The provisioning routes over HTTP: a device registers with a token, x509 challenge and
registration, manual approval with 202 + Retry-After, operator enrollments, problem+json."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient

from devicetrust.api import create_app
from devicetrust.api.routers.provisioning import device_router
from devicetrust.api.routers.provisioning import router as enrollment_router
from devicetrust.api.security import api_routes, check_every_route_states_permission
from devicetrust.auth import Scope
from devicetrust.domain import FixedClock
from devicetrust.identity import UnitSpec
from devicetrust.pki import CaRole
from devicetrust.provisioning import challenge_message, encode_token
from devicetrust.provisioning.symmetric import b64url_decode
from devicetrust.runtime import Platform, Settings
from devicetrust.runtime.settings import DatabaseSettings
from devicetrust.store.database import Database
from devicetrust.vault import Vault
from tests.provisioning.conftest import birth_certificate, csr_for, new_key
from tests.software_keys import allow_software_keys


@pytest.fixture
def platform(db: Database, clock: FixedClock, tmp_path: Path) -> Iterator[Platform]:
    settings = Settings(data_dir=tmp_path / "data", database=DatabaseSettings(url=db.url))
    # The `db` fixture is at head already: skip Platform's (no-op) upgrade on every test.
    vault = Vault.from_key(os.urandom(32))
    built = Platform(settings, clock=clock, vault=vault, migrate=False)
    built.pki.init_hierarchy(actor="test")
    allow_software_keys(built.policy)
    yield built
    built.close()


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    app: FastAPI = create_app(platform)
    paths = {route.path for route in api_routes(app.routes)}
    if "/v1/provisioning/register" not in paths:  # until app.py registers the routers
        app.include_router(device_router)
        app.include_router(enrollment_router)
    check_every_route_states_permission(app.routes)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def operator(platform: Platform) -> dict[str, str]:
    token = platform.api_keys.create(
        "op", [Scope.PROVISIONING_READ, Scope.PROVISIONING_WRITE], actor="test"
    )[1]
    return {"Authorization": f"Bearer {token}"}


def _unit(platform: Platform) -> str:
    return platform.identity.register(UnitSpec("arm-r7", {}), actor="factory").physical_id


def test_symmetric_group_over_http(
    client: TestClient, platform: Platform, operator: dict[str, str], clock: FixedClock
) -> None:
    body = {
        "name": "line-03",
        "attestation": "symmetric-key",
        "allocation": {"policy": "pool", "pool_pattern": "line-03-left-welding-{01..24}"},
    }
    created = client.post("/v1/enrollments/groups", json=body, headers=operator)
    assert created.status_code == 201, created.text
    group_key = b64url_decode(created.json()["key"])
    assert client.get("/v1/enrollments/line-03", headers=operator).json()["has_sealed_key"]
    assert "key" not in client.get("/v1/enrollments/line-03", headers=operator).json()
    pid = _unit(platform)
    device_key = hmac.digest(group_key, pid.encode(), hashlib.sha256)
    token = encode_token(
        device_key, pid, clock.now() + timedelta(minutes=5), secrets.token_urlsafe(16)
    )
    register = {
        "physical_id": pid,
        "method": "symmetric-key",
        "csr": csr_for(new_key()).decode(),
        "evidence": {"token": token},
    }
    answer = client.post("/v1/provisioning/register", json=register)
    assert answer.status_code == 200, answer.text
    out = answer.json()
    assert out["logical_name"] == "line-03-left-welding-01"
    assert out["topics"]["diagnostics"] == f"devices/{pid}/diagnostics"
    assert "BEGIN CERTIFICATE" in out["certificate_pem"]
    replay = client.post("/v1/provisioning/register", json=register)
    assert replay.status_code == 401
    assert replay.headers["content-type"] == "application/problem+json"
    assert replay.json()["code"] == "provisioning.token_replayed"
    assert client.get(f"/v1/provisioning/status/{pid}").json()["status"] == "assigned"


def test_x509_and_manual_approval_over_http(
    client: TestClient, platform: Platform, operator: dict[str, str]
) -> None:
    ca_id = platform.pki.active_ca(CaRole.MANUFACTURING).ca_id
    body = {
        "name": "factory-a",
        "attestation": "x509",
        "ca_id": ca_id,
        "allocation": {"policy": "manual"},
    }
    assert client.post("/v1/enrollments/groups", json=body, headers=operator).status_code == 201
    pid = _unit(platform)
    birth_key = new_key()
    birth = birth_certificate(platform.pki, pid, birth_key)

    def attempt() -> object:
        issued = client.post(
            "/v1/provisioning/challenge", json={"physical_id": pid, "method": "x509"}
        )
        assert issued.status_code == 201, issued.text
        challenge = issued.json()
        csr = csr_for(new_key())
        message = challenge_message(
            challenge["challenge_id"], challenge["payload"]["nonce"], pid, csr
        )
        signature = birth_key.sign(message, ec.ECDSA(hashes.SHA256()))
        return client.post(
            "/v1/provisioning/register",
            json={
                "physical_id": pid,
                "method": "x509",
                "csr": csr.decode(),
                "evidence": {
                    "challenge_id": challenge["challenge_id"],
                    "birth_chain": birth,
                    "signature": base64.urlsafe_b64encode(signature).rstrip(b"=").decode(),
                },
            },
        )

    pending = attempt()
    assert pending.status_code == 202 and pending.headers["Retry-After"] == "30"  # type: ignore[attr-defined]
    queue = client.get("/v1/enrollments/pending", headers=operator).json()["items"]
    assert [r["physical_id"] for r in queue] == [pid]
    approved = client.post(
        f"/v1/enrollments/pending/{pid}/approve", json={"name": "press-9"}, headers=operator
    )
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    done = attempt()
    assert done.status_code == 200 and done.json()["logical_name"] == "press-9"  # type: ignore[attr-defined]


def test_operator_routes_need_a_key_and_bad_input_is_a_problem(
    client: TestClient, platform: Platform, operator: dict[str, str]
) -> None:
    assert client.get("/v1/enrollments").status_code == 401
    unknown = client.post(
        "/v1/provisioning/register",
        json={"physical_id": "nope", "method": "symmetric-key", "csr": "x", "evidence": {}},
    )
    assert unknown.status_code == 400 and unknown.json()["code"] == "identity.invalid_physical_id"
    bad_pool = {
        "name": "g",
        "attestation": "symmetric-key",
        "allocation": {"policy": "pool", "pool_pattern": "nope"},
    }
    refused = client.post("/v1/enrollments/groups", json=bad_pool, headers=operator)
    assert refused.status_code == 400
    assert refused.json()["code"] == "provisioning.invalid_pool_pattern"
    pid = _unit(platform)
    shown = client.post(
        "/v1/enrollments/individual",
        json={
            "physical_id": pid,
            "attestation": "symmetric-key",
            "allocation": {"policy": "manual"},
        },
        headers=operator,
    )
    assert shown.status_code == 201
    ref = shown.json()["enrollment"]["enrollment_id"]
    patched = client.patch(f"/v1/enrollments/{ref}", json={"enabled": False}, headers=operator)
    assert patched.status_code == 200 and patched.json()["enabled"] is False


def test_rate_limited_device_gets_429_with_retry_after(
    client: TestClient, platform: Platform
) -> None:
    pid = _unit(platform)
    body = {"physical_id": pid, "method": "x509"}
    answers = [client.post("/v1/provisioning/challenge", json=body) for _ in range(11)]
    assert {a.status_code for a in answers[:10]} == {403}  # no enrollment covers the unit
    assert answers[10].status_code == 429
    assert int(answers[10].headers["Retry-After"]) >= 1
    assert answers[10].json()["code"] == "provisioning.rate_limited"

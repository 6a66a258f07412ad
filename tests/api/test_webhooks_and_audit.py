"""Webhooks through HTTP: the signing secret is shown once; deliveries can be listed and a
dead one delivered again. The audit log reads back and verifies."""

from __future__ import annotations

import socket
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from devicetrust.auth import Scope
from devicetrust.domain import FixedClock
from devicetrust.runtime import Platform
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow
from tests.api.conftest import MintKey
from tests.api.wire import assert_problem, bearer, unit
from tests.conftest import snapshot_tables


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_webhook_secret_is_shown_once(client: TestClient, mint: MintKey) -> None:
    hooks = bearer(mint(Scope.WEBHOOK_READ, Scope.WEBHOOK_WRITE, Scope.AUDIT_READ))
    created = client.post(
        "/v1/webhooks",
        json={"url": "https://erp.example.com/hooks?token=abc", "event_types": ["device.*"]},
        headers=hooks,
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    hook = created.json()["webhook"]
    assert secret.startswith("whsec_") and hook["event_types"] == ["device.*"]
    listed = client.get("/v1/webhooks", headers=hooks)
    assert [h["id"] for h in listed.json()["items"]] == [hook["id"]]
    one = client.get(f"/v1/webhooks/{hook['id']}", headers=hooks)
    assert one.json() == hook
    for response in (listed, one, client.get("/v1/audit", headers=hooks)):
        assert secret not in response.text
    assert "token=abc" not in client.get("/v1/audit", headers=hooks).text
    deleted = client.delete(f"/v1/webhooks/{hook['id']}", headers=hooks)
    assert deleted.status_code == 200
    assert client.get("/v1/webhooks", headers=hooks).json() == {"items": []}
    assert_problem(
        client.get(f"/v1/webhooks/{hook['id']}", headers=hooks), 404, "webhook.not_found"
    )


def test_dead_delivery_is_listed_and_redelivered(
    client: TestClient, mint: MintKey, platform: Platform, clock: FixedClock
) -> None:
    hooks = bearer(mint(Scope.WEBHOOK_READ, Scope.WEBHOOK_WRITE, Scope.IDENTITY_WRITE))
    url = f"http://127.0.0.1:{_closed_port()}/hook"
    subscription = {"url": url, "event_types": ["identity.created"]}
    created = client.post("/v1/webhooks", json=subscription, headers=hooks)
    assert created.status_code == 201
    assert client.post("/v1/physical-identities", json=unit(), headers=hooks).status_code == 201
    hooks_settings = platform.settings.webhooks
    for _ in range(hooks_settings.max_attempts):
        platform.dispatcher.run_once()
        clock.advance(timedelta(seconds=hooks_settings.max_backoff_seconds * 2))
    dead = client.get("/v1/webhooks/deliveries", params={"status": "dead"}, headers=hooks)
    assert dead.status_code == 200
    items = dead.json()["items"]
    assert len(items) == 1 and items[0]["event_type"] == "identity.created"
    again = client.post(f"/v1/webhooks/deliveries/{items[0]['id']}/redeliver", headers=hooks)
    assert again.status_code == 200 and again.json()["status"] == "pending"
    twice = client.post(f"/v1/webhooks/deliveries/{items[0]['id']}/redeliver", headers=hooks)
    assert_problem(twice, 409, "webhook.delivery_not_dead")
    bad_status = client.get("/v1/webhooks/deliveries", params={"status": "lost"}, headers=hooks)
    assert_problem(bad_status, 400, "request.invalid_parameter")


def test_audit_verify_reports_a_tampered_entry(
    client: TestClient, mint: MintKey, db: Database
) -> None:
    auditor = bearer(mint(Scope.AUDIT_READ, Scope.IDENTITY_WRITE))
    for _ in range(3):
        client.post("/v1/physical-identities", json=unit(), headers=auditor)
    assert client.get("/v1/audit/verify", headers=auditor).json()["ok"] is True
    with db.engine.begin() as conn:
        conn.execute(update(AuditEntryRow).where(AuditEntryRow.seq == 3).values(actor="mallory"))
    before = snapshot_tables(db)
    verdict = client.get("/v1/audit/verify", headers=auditor).json()
    assert verdict["ok"] is False
    assert verdict["first_break"]["seq"] == 3 and verdict["count"] == 2
    assert snapshot_tables(db) == before


def test_audit_filters_by_subject(client: TestClient, mint: MintKey) -> None:
    key = bearer(mint(Scope.AUDIT_READ, Scope.IDENTITY_WRITE))
    first = client.post("/v1/physical-identities", json=unit(), headers=key).json()
    client.post("/v1/physical-identities", json=unit(), headers=key)
    about = client.get("/v1/audit", params={"subject": first["physical_id"]}, headers=key).json()
    assert [e["subject"] for e in about["items"]] == [first["physical_id"]]
    assert_problem(
        client.get("/v1/audit", params={"limit": 5000}, headers=key),
        400,
        "request.invalid_parameter",
    )

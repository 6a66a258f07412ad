"""The article's robot arm through HTTP: manufactured, provisioned, renamed, replaced, and
its history read back, as an operator with an API key would do it."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from devicetrust.auth import Scope
from devicetrust.domain import FixedClock
from devicetrust.runtime import Platform
from tests.api.conftest import MintKey
from tests.api.wire import NAME, bearer, unit

BASE = "/v1/physical-identities"
LOGICAL = "/v1/logical-identities"


def test_full_identity_lifecycle(
    client: TestClient, mint: MintKey, clock: FixedClock, platform: Platform
) -> None:
    writer = bearer(mint(Scope.IDENTITY_READ, Scope.IDENTITY_WRITE))

    # Manufacturing: one unit, then a batch.
    first = client.post(BASE, json=unit(controller="CTL-1", arm="ARM-1"), headers=writer)
    assert first.status_code == 201, first.text
    old = first.json()
    assert old["state"] == "manufactured" and old["logical_name"] is None
    assert old["hardware_serials"] == {"controller": "CTL-1", "arm": "ARM-1"}
    batch = client.post(
        f"{BASE}/batch", json={"units": [unit(controller="CTL-2"), unit("ra-7")]}, headers=writer
    )
    assert batch.status_code == 201
    new, spare = (u["physical_id"] for u in batch.json()["items"])
    assert client.get(f"{BASE}/{old['physical_id']}", headers=writer).json() == old
    listed = client.get(BASE, params={"state": "manufactured", "limit": 2}, headers=writer)
    assert len(listed.json()["items"]) == 2 and listed.json()["limit"] == 2

    # Provisioning: a logical identity, bound to the first unit.
    created = client.post(
        LOGICAL, json={"name": NAME, "attributes": {"site": "plant-1"}}, headers=writer
    )
    assert created.status_code == 201
    assert created.json()["attributes"] == {"site": "plant-1"}
    bound = client.post(
        f"{LOGICAL}/{NAME}/bind", json={"physical_id": old["physical_id"]}, headers=writer
    )
    assert bound.status_code == 200 and bound.json()["physical_id"] == old["physical_id"]
    unit_now = client.get(f"{BASE}/{old['physical_id']}", headers=writer).json()
    assert unit_now["state"] == "provisioned" and unit_now["logical_name"] == NAME
    active = client.post(
        f"{BASE}/{old['physical_id']}/state", json={"state": "active"}, headers=writer
    )
    assert active.status_code == 200 and active.json()["state"] == "active"

    patched = client.patch(
        f"{LOGICAL}/{NAME}", json={"attributes": {"line": "03", "site": None}}, headers=writer
    )
    assert patched.json()["attributes"] == {"line": "03"}
    bound_at = clock.now()

    # Ten days later the robot is replaced; the old unit goes to quarantine.
    clock.advance(timedelta(days=10))
    replaced = client.post(
        f"{LOGICAL}/{NAME}/replace",
        json={
            "new_physical_id": new,
            "old_physical_id": old["physical_id"],
            "fate": "quarantined",
            "reason": "gearbox failure",
        },
        headers=writer,
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["old_unit_state"] == "quarantined"
    assert client.get(f"{LOGICAL}/{NAME}", headers=writer).json()["physical_id"] == new

    history = client.get(f"{LOGICAL}/{NAME}/history", headers=writer).json()
    assert [b["physical_id"] for b in history["bindings"]] == [old["physical_id"], new]
    assert history["bindings"][0]["end_reason"] == "gearbox failure"
    at = (bound_at + timedelta(days=1)).isoformat()
    holder = client.get(f"{LOGICAL}/{NAME}/history", params={"at": at}, headers=writer).json()
    assert holder["holder"]["physical_id"] == old["physical_id"]
    before = (bound_at - timedelta(days=1)).isoformat()
    nobody = client.get(f"{LOGICAL}/{NAME}/history", params={"at": before}, headers=writer)
    assert nobody.json()["holder"] is None

    # The old unit leaves quarantine by release only, and never straight to active.
    released = client.post(
        f"{BASE}/{old['physical_id']}/release", json={"reason": "repaired"}, headers=writer
    )
    assert released.status_code == 200 and released.json()["state"] == "suspended"
    unit_history = client.get(f"{BASE}/{old['physical_id']}/history", headers=writer).json()
    assert [b["logical_name"] for b in unit_history["bindings"]] == [NAME]

    # Rename; the old name still resolves during the grace period.
    renamed = client.post(
        f"{LOGICAL}/{NAME}/rename", json={"new_name": "line-04-welding-01"}, headers=writer
    )
    assert renamed.status_code == 200 and renamed.json()["former_names"] == [NAME]
    assert client.get(f"{LOGICAL}/{NAME}", headers=writer).json()["name"] == "line-04-welding-01"

    # Transfer to the spare, then unbind.
    moved = client.post(
        f"{LOGICAL}/line-04-welding-01/transfer", json={"physical_id": spare}, headers=writer
    )
    assert moved.status_code == 200 and moved.json()["physical_id"] == spare
    unbound = client.post(f"{LOGICAL}/line-04-welding-01/unbind", headers=writer)
    assert unbound.status_code == 200 and unbound.json()["end_reason"] == "unbound"
    listed_logical = client.get(LOGICAL, headers=writer).json()["items"]
    assert [(i["name"], i["physical_id"]) for i in listed_logical] == [("line-04-welding-01", None)]

    # Every change is in the audit log, attributed to the key, and the chain verifies.
    auditor = bearer(mint(Scope.AUDIT_READ))
    entries = client.get("/v1/audit", params={"limit": 1000}, headers=auditor).json()["items"]
    key_id = writer["Authorization"].split("_")[1]
    changes = [e for e in entries if not e["action"].startswith("api_key.")]
    assert {e["actor"] for e in changes} == {f"apikey:{key_id}"}
    assert "device.replaced" in {e["action"] for e in changes}
    verified = client.get("/v1/audit/verify", headers=auditor).json()
    assert verified["ok"] is True and verified["first_break"] is None
    assert verified["count"] == len(entries)
    assert platform.identity.get_logical("line-04-welding-01").physical_id is None


def test_audit_pages_with_after(client: TestClient, mint: MintKey) -> None:
    writer = bearer(mint(Scope.IDENTITY_WRITE, Scope.AUDIT_READ))
    for _ in range(5):
        assert client.post(BASE, json=unit(), headers=writer).status_code == 201
    first = client.get("/v1/audit", params={"limit": 2}, headers=writer).json()
    assert [e["seq"] for e in first["items"]] == [1, 2]
    second = client.get(
        "/v1/audit", params={"limit": 100, "after": first["next_after"]}, headers=writer
    ).json()
    assert [e["seq"] for e in second["items"]] == [3, 4, 5, 6]
    empty = client.get("/v1/audit", params={"after": 6}, headers=writer).json()
    assert empty == {"items": [], "next_after": None}

"""The operator API for device credentials (`/v1/devices/{id}/token-keys`, `.../public-keys`,
`/v1/public-keys/{kid}/revoke`) on SQLite and PostgreSQL: scopes are enforced, a rotated key
is in its answer only (no-store) and works for the device, bad input is problem+json and
changes nothing."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from devicetrust.auth import Scope
from devicetrust.deviceauth import key_id_of
from tests.api.wire import assert_problem
from tests.conftest import snapshot_tables
from tests.credentials.conftest import NAME, Env, allow_hmac, hmac_token

KEYS = "/v1/devices/{}/token-keys"
PUBLIC = "/v1/devices/{}/public-keys"


def _pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def test_rotate_shows_the_key_once_and_the_device_can_use_it(env: Env) -> None:
    writer = env.headers(Scope.CREDENTIAL_WRITE, Scope.CREDENTIAL_READ)
    first = env.client.post(KEYS.format(env.pid), json={"overlap": "12h"}, headers=writer)
    assert first.status_code == 201, first.text
    assert first.headers["cache-control"] == "no-store"
    body = first.json()
    assert body["version"]["version"] == 1 and body["version"]["accepted"] is True
    key = base64.urlsafe_b64decode(body["key"] + "=")
    assert len(key) == 32

    listed = env.client.get(KEYS.format(env.pid), headers=writer)
    assert listed.status_code == 200
    assert body["key"] not in listed.text and "key" not in listed.json()["items"][0]
    assert [v["version"] for v in listed.json()["items"]] == [1]

    # The key just shown authenticates the unit (once HMAC tokens are allowed for it).
    allow_hmac(env.platform, env.pid)
    token = hmac_token(env.platform, env.pid, key)
    me = env.client.get(
        "/v1/device/me", headers={"Authorization": f"SharedAccessSignature {token}"}
    )
    assert me.status_code == 200, me.text
    assert (me.json()["physical_id"], me.json()["logical_name"]) == (env.pid, NAME)

    # A second rotation: version 1 retires after the overlap, both accepted until then.
    second = env.client.post(KEYS.format(env.pid), headers=writer).json()
    assert second["version"]["version"] == 2 and second["key"] != body["key"]
    items = env.client.get(KEYS.format(env.pid), headers=writer).json()["items"]
    assert items[0]["retires_at"] is not None and items[0]["accepted"] is True

    revoked = env.client.post(KEYS.format(env.pid) + "/1/revoke", headers=writer)
    assert revoked.status_code == 200
    assert revoked.json()["accepted"] is False and revoked.json()["destroyed"] is True


def test_public_keys_register_list_revoke(env: Env) -> None:
    writer = env.headers(Scope.CREDENTIAL_WRITE)
    reader = env.headers(Scope.CREDENTIAL_READ)
    key = ec.generate_private_key(ec.SECP256R1())
    done = env.client.post(
        PUBLIC.format(env.pid),
        json={"public_key_pem": _pem(key), "expires_at": "2027-01-01T00:00:00Z"},
        headers=writer,
    )
    assert done.status_code == 201, done.text
    kid = done.json()["key_id"]
    assert kid == key_id_of(key.public_key()) and done.json()["algorithm"] == "ES256"
    ed = ed25519.Ed25519PrivateKey.generate()
    assert (
        env.client.post(
            PUBLIC.format(env.pid), json={"public_key_pem": _pem(ed)}, headers=writer
        ).json()["algorithm"]
        == "EdDSA"
    )

    listed = env.client.get(PUBLIC.format(env.pid), headers=reader).json()["items"]
    assert {k["key_id"] for k in listed} == {kid, key_id_of(ed.public_key())}

    revoked = env.client.post(f"/v1/public-keys/{kid}/revoke", headers=writer)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None


def test_scopes_are_enforced_and_a_refusal_changes_nothing(env: Env) -> None:
    reader = env.headers(Scope.CREDENTIAL_READ)
    other = env.headers(Scope.IDENTITY_WRITE, Scope.POLICY_WRITE, Scope.PROVISIONING_WRITE)
    before = snapshot_tables(env.platform.db)
    for headers in (reader, other):
        rotate = env.client.post(KEYS.format(env.pid), headers=headers)
        body = assert_problem(rotate, 403, "auth.insufficient_scope")
        assert "key" not in body
        register = env.client.post(
            PUBLIC.format(env.pid), json={"public_key_pem": "x"}, headers=headers
        )
        assert_problem(register, 403, "auth.insufficient_scope")
    assert_problem(
        env.client.get(KEYS.format(env.pid), headers=other), 403, "auth.insufficient_scope"
    )
    assert_problem(env.client.get(KEYS.format(env.pid)), 401, "auth.missing_key")
    assert snapshot_tables(env.platform.db) == before
    assert env.client.get(KEYS.format(env.pid), headers=reader).status_code == 200
    admin = env.headers(Scope.ADMIN)
    assert env.client.post(KEYS.format(env.pid), headers=admin).status_code == 201


def test_bad_input_is_a_problem_and_changes_nothing(env: Env) -> None:
    writer = env.headers(Scope.CREDENTIAL_WRITE, Scope.CREDENTIAL_READ)
    before = snapshot_tables(env.platform.db)
    unknown = "c2c38155-b0d2-48b6-82fd-22fe3b316224"
    cases = [
        (
            env.client.post(KEYS.format("not-a-uuid"), headers=writer),
            400,
            "identity.invalid_physical_id",
        ),
        (env.client.post(KEYS.format(unknown), headers=writer), 404, "identity.physical_not_found"),
        (env.client.get(KEYS.format(unknown), headers=writer), 404, "identity.physical_not_found"),
        (
            env.client.post(KEYS.format(env.pid), json={"overlap": "forever"}, headers=writer),
            400,
            "policy.invalid_duration",
        ),
        (
            env.client.post(KEYS.format(env.pid), json={"overlap": "31d"}, headers=writer),
            400,
            "deviceauth.invalid_limits",
        ),
        (
            env.client.post(
                KEYS.format(env.pid), json={"overlap": "1d", "key": "AAAA"}, headers=writer
            ),
            422,
            "request.invalid_body",
        ),
        (
            env.client.post(KEYS.format(env.pid) + "/7/revoke", headers=writer),
            404,
            "deviceauth.key_not_found",
        ),
        (
            env.client.post(KEYS.format(env.pid) + "/0/revoke", headers=writer),
            400,
            "request.invalid_parameter",
        ),
        (
            env.client.post(
                PUBLIC.format(env.pid), json={"public_key_pem": "not a key"}, headers=writer
            ),
            400,
            "deviceauth.invalid_key",
        ),
        (
            env.client.post(
                PUBLIC.format(env.pid),
                json={"public_key_pem": _pem(ec.generate_private_key(ec.SECP384R1()))},
                headers=writer,
            ),
            400,
            "deviceauth.invalid_key",
        ),
        (
            env.client.post(
                PUBLIC.format(env.pid),
                json={
                    "public_key_pem": _pem(ec.generate_private_key(ec.SECP256R1())),
                    "expires_at": "2027-01-01T00:00:00",
                },
                headers=writer,
            ),
            422,
            "request.invalid_body",
        ),
        (
            env.client.post("/v1/public-keys/" + "ab" * 32 + "/revoke", headers=writer),
            404,
            "deviceauth.key_not_found",
        ),
    ]
    for response, status, code in cases:
        assert_problem(response, status, code)
    assert snapshot_tables(env.platform.db) == before


def test_registering_the_same_key_twice_is_a_conflict(env: Env) -> None:
    writer = env.headers(Scope.CREDENTIAL_WRITE)
    pem = _pem(ec.generate_private_key(ec.SECP256R1()))
    assert (
        env.client.post(
            PUBLIC.format(env.pid), json={"public_key_pem": pem}, headers=writer
        ).status_code
        == 201
    )
    again = env.client.post(PUBLIC.format(env.pid), json={"public_key_pem": pem}, headers=writer)
    assert_problem(again, 409, "deviceauth.key_exists")

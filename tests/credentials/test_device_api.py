"""`GET /v1/device/me`: a device authenticated by its own credential (TLS client
certificate through the ASGI TLS extension, a JWT, an HMAC token), in-process on SQLite and
PostgreSQL. Every refusal answers the same generic problem; the audit log has the precise
code."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient

from devicetrust.api import create_app
from devicetrust.api.device_auth import api_audience, api_resource
from devicetrust.api.tls import with_tls
from devicetrust.auth import Scope
from devicetrust.deviceauth import PUBLIC_MESSAGE
from devicetrust.domain import DeviceState
from devicetrust.pki import serial_text
from devicetrust.runtime import Platform, Settings
from devicetrust.runtime.settings import ServerSettings
from tests.api.wire import assert_problem
from tests.conftest import snapshot_tables
from tests.credentials.conftest import (
    ACTOR,
    API_HOST,
    API_URL,
    NAME,
    Env,
    allow_hmac,
    device_certificate,
    device_jwt,
    hmac_token,
    refusal_codes,
    registered_key,
)

ME = "/v1/device/me"


def _sas(token: str) -> dict[str, str]:
    return {"Authorization": f"SharedAccessSignature {token}"}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _tls_client(platform: Platform, pem: str) -> TestClient:
    tls = {"client_cert_chain": [pem], "tls_version": 0x0304}
    return TestClient(with_tls(create_app(platform), tls))


def _generic(response: Any, status: int) -> dict[str, Any]:
    code = {401: "auth.credential_refused", 403: "auth.device_forbidden"}[status]
    body = assert_problem(response, status, code)
    assert body["detail"] == PUBLIC_MESSAGE
    assert set(body) == {"type", "title", "status", "detail", "code"}
    return body


def test_a_jwt_device_sees_its_identity_and_policy(env: Env) -> None:
    key = registered_key(env.platform, env.pid)
    response = env.client.get(ME, headers=_bearer(device_jwt(env.platform, env.pid, key)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["physical_id"], body["logical_name"], body["method"]) == (env.pid, NAME, "jwt")
    assert body["policy"] == {
        "auth_methods": ["jwt", "mtls"],
        "max_token_lifetime": 3600,
        "max_certificate_lifetime": 86400,
    }
    expires = datetime.fromisoformat(body["expires_at"])
    assert expires == env.platform.clock.now() + timedelta(minutes=10)


def test_a_certificate_device_is_identified_by_its_certificate(env: Env) -> None:
    issued, _key = device_certificate(env.platform, env.pid)
    pem = issued.certificate.public_bytes(Encoding.PEM).decode()
    with _tls_client(env.platform, pem) as client:
        # The certificate wins over whatever the request claims in a header.
        response = client.get(ME, headers=_bearer("not-even-a-jwt"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["physical_id"], body["method"]) == (env.pid, "mtls")
    assert body["credential_id"] == serial_text(issued.serial)


def test_hmac_tokens_need_a_relaxation(env: Env) -> None:
    shown = env.platform.device_auth.token_keys.rotate(env.pid, actor=ACTOR)
    with shown:
        token = hmac_token(env.platform, env.pid, shown.key)
        later = hmac_token(env.platform, env.pid, shown.key)
    _generic(env.client.get(ME, headers=_sas(token)), 403)
    assert refusal_codes(env.platform.db)[-1] == "auth.method_not_allowed"

    allow_hmac(env.platform, env.pid)
    env.clock.advance(timedelta(seconds=10))  # past the policy-limits cache
    response = env.client.get(ME, headers=_sas(later))
    assert response.status_code == 200, response.text
    assert response.json()["method"] == "hmac-token"
    assert "hmac-token" in response.json()["policy"]["auth_methods"]


Case = Callable[[Env], dict[str, str]]


def _expired(env: Env) -> dict[str, str]:
    key = registered_key(env.platform, env.pid)
    token = device_jwt(env.platform, env.pid, key, lifetime=timedelta(minutes=5))
    env.clock.advance(timedelta(hours=1))
    return _bearer(token)


def _wrong_audience(env: Env) -> dict[str, str]:
    key = registered_key(env.platform, env.pid)
    return _bearer(device_jwt(env.platform, env.pid, key, audience="https://other.example"))


def _too_long(env: Env) -> dict[str, str]:
    key = registered_key(env.platform, env.pid)
    return _bearer(device_jwt(env.platform, env.pid, key, lifetime=timedelta(hours=3)))


def _revoked_key(env: Env) -> dict[str, str]:
    key = registered_key(env.platform, env.pid)
    token = device_jwt(env.platform, env.pid, key)
    kid = env.platform.device_auth.public_keys.list_for(env.pid)[0].key_id
    env.platform.device_auth.public_keys.revoke(kid, actor=ACTOR)
    return _bearer(token)


def _suspended(env: Env) -> dict[str, str]:
    key = registered_key(env.platform, env.pid)
    env.platform.identity.set_state(env.pid, DeviceState.SUSPENDED, actor=ACTOR)
    return _bearer(device_jwt(env.platform, env.pid, key))


def _garbage(env: Env) -> dict[str, str]:
    return _bearer("eyJhbGciOiJub25lIn0.e30.")


def _hmac_wrong_resource(env: Env) -> dict[str, str]:
    allow_hmac(env.platform, env.pid)
    with env.platform.device_auth.token_keys.rotate(env.pid, actor=ACTOR) as shown:
        return _sas(hmac_token(env.platform, env.pid, shown.key, resource="mqtt.example.com"))


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (_expired, 401, "auth.token_expired"),
        (_wrong_audience, 401, "auth.token_wrong_audience"),
        (_too_long, 401, "auth.token_lifetime_exceeded"),
        (_revoked_key, 401, "auth.key_revoked"),
        (_suspended, 403, "auth.unit_suspended"),
        (_garbage, 401, "auth.algorithm_refused"),
        (_hmac_wrong_resource, 401, "auth.token_wrong_audience"),
    ],
)
def test_refusals_are_generic_and_audited_precisely(
    env: Env, make: Case, status: int, code: str
) -> None:
    headers = make(env)
    before = snapshot_tables(env.platform.db)
    body = _generic(env.client.get(ME, headers=headers), status)
    assert code not in str(body)
    assert refusal_codes(env.platform.db)[-1] == code
    after = snapshot_tables(env.platform.db)
    changed = {t for t in after if after[t] != before[t]}
    assert changed == {"audit_log", "audit_head"}


def test_a_revoked_certificate_is_refused(env: Env) -> None:
    issued, _key = device_certificate(env.platform, env.pid)
    env.platform.pki.revoke(issued.serial, "keyCompromise", actor=ACTOR)
    with _tls_client(env.platform, issued.certificate.public_bytes(Encoding.PEM).decode()) as c:
        _generic(c.get(ME), 401)
    assert refusal_codes(env.platform.db)[-1] == "auth.cert_revoked"


def test_no_credential_or_an_operator_key_is_not_a_device(env: Env) -> None:
    token = env.platform.api_keys.create("op", [Scope.ADMIN], actor="test")[1]
    for headers in ({}, {"Authorization": "Basic YTpi"}, _bearer(token), _sas("")):
        response = env.client.get(ME, headers=headers)
        _generic(response, 401)
        assert "SharedAccessSignature" in response.headers["www-authenticate"]


def test_too_many_failures_from_one_source_are_rate_limited(env: Env) -> None:
    for _ in range(10):
        _generic(env.client.get(ME, headers=_bearer("a.b.c")), 401)
    limited = env.client.get(ME, headers=_bearer("a.b.c"))
    assert_problem(limited, 429, "auth.rate_limited")
    assert int(limited.headers["retry-after"]) >= 1


def test_audience_and_resource_follow_the_settings() -> None:
    assert api_audience(Settings(server=ServerSettings(public_url=API_URL + "/"))) == API_URL
    assert api_resource(Settings(server=ServerSettings(public_url=API_URL))) == API_HOST
    plain = Settings(server=ServerSettings(host="10.0.0.5", port=8443))
    assert (api_audience(plain), api_resource(plain)) == ("http://10.0.0.5:8443", "10.0.0.5")

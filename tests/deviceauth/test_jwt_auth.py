"""JWT device tokens end to end over the real service (SQLite and PostgreSQL): ES256 and
EdDSA tokens from PyJWT and from the `openssl` CLI authenticate; every attack and mistake is
refused with its own code: alg none, HS256 confusion, alg/key mismatch, wrong audience, wrong
subject, replayed jti, bad times, unknown/revoked/expired keys, revoked certificates."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from devicetrust.deviceauth import (
    AuthLimits,
    AuthMethod,
    AuthRefused,
    DeviceAuthService,
    DeviceKeyExists,
    InvalidDeviceKey,
    JwtAlgorithm,
    TokenMalformed,
    key_id_of,
)
from devicetrust.deviceauth.errors import AlgorithmRefused
from devicetrust.deviceauth.jwt_auth import read_header
from devicetrust.domain import DeviceState, FixedClock
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService
from devicetrust.pki import PkiService, Profile, serial_text
from devicetrust.store.database import Database
from tests.deviceauth.conftest import ACTOR, NAME, event_types, refusals
from tests.pki.certs import make_csr

AUD = "mqtt.example.com"
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def pem_of(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def claims(physical_id: str, clock: FixedClock, **changes: Any) -> dict[str, Any]:
    now = int(clock.now().timestamp())
    base = {"sub": physical_id, "aud": AUD, "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: PrivateKey, payload: dict[str, Any], **header: Any) -> str:
    alg = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "EdDSA"
    headers = {"kid": key_id_of(key.public_key()), **header}
    return jwt.encode(payload, key, algorithm=header.pop("alg", alg), headers=headers)


def refused(auth: DeviceAuthService, token: object, audience: str = AUD) -> AuthRefused:
    with pytest.raises(AuthRefused) as caught:
        auth.authenticate_jwt(token, audience=audience, entry_point="test")
    return caught.value


@pytest.fixture
def ec_key(auth: DeviceAuthService, unit: PhysicalIdentity) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    auth.public_keys.register(unit.physical_id, pem_of(key), actor=ACTOR)
    return key


@pytest.mark.parametrize("kind", ["ES256", "EdDSA"])
def test_pyjwt_tokens_authenticate(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock, kind: str
) -> None:
    key: PrivateKey = (
        ec.generate_private_key(ec.SECP256R1())
        if kind == "ES256"
        else ed25519.Ed25519PrivateKey.generate()
    )
    registered = auth.public_keys.register(unit.physical_id, pem_of(key), actor=ACTOR)
    assert registered.algorithm is JwtAlgorithm(kind)
    device = auth.authenticate_jwt(sign(key, claims(unit.physical_id, clock)), audience=AUD)
    assert (device.physical_id, device.logical_name) == (unit.physical_id, NAME)
    assert (device.method, device.credential_id) == (AuthMethod.JWT, registered.key_id)
    assert device.expires_at == clock.now() + timedelta(seconds=600)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("kind", ["ES256", "EdDSA"])
def test_openssl_signed_tokens_authenticate(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock, tmp_path: Path, kind: str
) -> None:
    """The JWS signature comes from a tool we did not write (the `openssl` CLI)."""
    key_file = tmp_path / "device.pem"
    algorithm = ["EC", "-pkeyopt", "ec_paramgen_curve:P-256"] if kind == "ES256" else ["ED25519"]
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", *algorithm, "-out", str(key_file)], check=True
    )
    public = subprocess.run(
        ["openssl", "pkey", "-in", str(key_file), "-pubout"], capture_output=True, check=True
    ).stdout
    registered = auth.public_keys.register(unit.physical_id, public, actor=ACTOR)
    header = {"alg": kind, "typ": "JWT", "kid": registered.key_id}
    body = claims(unit.physical_id, clock)
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
    (tmp_path / "input").write_bytes(signing_input.encode())
    if kind == "ES256":
        der = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(key_file), str(tmp_path / "input")],
            capture_output=True,
            check=True,
        ).stdout
        r, s = decode_dss_signature(der)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = subprocess.run(
            [
                "openssl",
                "pkeyutl",
                "-sign",
                "-rawin",
                "-inkey",
                str(key_file),
                "-in",
                str(tmp_path / "input"),
            ],
            capture_output=True,
            check=True,
        ).stdout
    token = f"{signing_input}.{_b64(signature)}"
    assert auth.authenticate_jwt(token, audience=AUD).credential_id == registered.key_id


def test_alg_none_is_refused_before_any_key_lookup(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock, ec_key: Any, db: Database
) -> None:
    token = jwt.encode(
        claims(unit.physical_id, clock),
        None,
        algorithm="none",
        headers={"kid": key_id_of(ec_key.public_key())},
    )
    error = refused(auth, token)
    assert error.code == "auth.algorithm_refused"
    assert refusals(db)[-1]["claimed_id"] == unit.physical_id


def test_hs256_with_the_public_key_as_secret_is_refused(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock, ec_key: Any
) -> None:
    """The classic RS/ES -> HS confusion: the attacker MACs with the public key's bytes."""
    header = {"alg": "HS256", "kid": key_id_of(ec_key.public_key())}
    signing_input = (
        f"{_b64(json.dumps(header).encode())}."
        f"{_b64(json.dumps(claims(unit.physical_id, clock)).encode())}"
    )
    mac = hmac.digest(pem_of(ec_key), signing_input.encode(), hashlib.sha256)
    assert refused(auth, f"{signing_input}.{_b64(mac)}").code == "auth.algorithm_refused"


def test_alg_must_be_the_one_the_key_pins_and_the_limits_allow(
    db: Database,
    clock: FixedClock,
    vault: Any,
    unit: PhysicalIdentity,
    auth: DeviceAuthService,
    ec_key: Any,
) -> None:
    other = ed25519.Ed25519PrivateKey.generate()
    mismatched = sign(other, claims(unit.physical_id, clock), kid=key_id_of(ec_key.public_key()))
    assert refused(auth, mismatched).code == "auth.algorithm_refused"
    eddsa_only = AuthLimits(jwt_algorithms=frozenset({JwtAlgorithm.EDDSA}))
    strict = DeviceAuthService(db, clock, vault, limits_for=lambda _pid: eddsa_only)
    assert refused(strict, sign(ec_key, claims(unit.physical_id, clock))).code == (
        "auth.algorithm_refused"
    )


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"aud": "api.example.com"}, "auth.token_wrong_audience"),
        ({"exp": -121, "iat": -600}, "auth.token_expired"),
        ({"iat": 121, "exp": 600}, "auth.token_not_yet_valid"),
        ({"nbf": 300}, "auth.token_not_yet_valid"),
        ({"iat": 0, "exp": 3601}, "auth.token_lifetime_exceeded"),
        ({"jti": None}, "auth.token_malformed"),
        ({"aud": None}, "auth.token_malformed"),
        ({"exp": "soon"}, "auth.token_malformed"),
        ({"jti": "short"}, "auth.token_malformed"),
        ({"sub": "c2c38155-b0d2-48b6-82fd-22fe3b316224"}, "auth.token_wrong_subject"),
    ],
)
def test_claims_that_are_refused(
    auth: DeviceAuthService,
    unit: PhysicalIdentity,
    clock: FixedClock,
    ec_key: Any,
    changes: dict[str, Any],
    code: str,
) -> None:
    now = int(clock.now().timestamp())
    relative = {"exp", "iat", "nbf"}
    body = claims(
        unit.physical_id,
        clock,
        **{k: now + v if k in relative and isinstance(v, int) else v for k, v in changes.items()},
    )
    assert refused(auth, sign(ec_key, body)).code == code


def test_expiry_inside_the_skew_is_accepted(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock, ec_key: Any
) -> None:
    now = int(clock.now().timestamp())
    token = sign(ec_key, claims(unit.physical_id, clock, iat=now - 600, exp=now - 119))
    assert auth.authenticate_jwt(token, audience=AUD).physical_id == unit.physical_id


def test_a_jti_is_accepted_once_then_forgotten_after_expiry(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock, ec_key: Any
) -> None:
    token = sign(ec_key, claims(unit.physical_id, clock))
    auth.authenticate_jwt(token, audience=AUD)
    assert refused(auth, token).code == "auth.token_replayed"
    clock.advance(timedelta(minutes=13))
    assert auth.purge_expired() == 1
    assert refused(auth, token).code == "auth.token_expired"


def test_signature_by_another_key_is_invalid(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock, ec_key: Any
) -> None:
    forger = ec.generate_private_key(ec.SECP256R1())
    token = sign(forger, claims(unit.physical_id, clock), kid=key_id_of(ec_key.public_key()))
    assert refused(auth, token).code == "auth.token_invalid"
    tampered = sign(ec_key, claims(unit.physical_id, clock))
    head, _payload, signature = tampered.split(".")
    forged = _b64(json.dumps(claims(unit.physical_id, clock, sub=unit.physical_id)).encode())
    assert refused(auth, f"{head}.{forged}.{signature}").code == "auth.token_invalid"


def test_unknown_revoked_and_expired_keys(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock, ec_key: Any
) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    assert refused(auth, sign(stranger, claims(unit.physical_id, clock))).code == (
        "auth.key_unknown"
    )
    short = ed25519.Ed25519PrivateKey.generate()
    auth.public_keys.register(
        unit.physical_id, pem_of(short), actor=ACTOR, expires_at=clock.now() + timedelta(hours=1)
    )
    auth.public_keys.revoke(key_id_of(ec_key.public_key()), actor=ACTOR)
    assert refused(auth, sign(ec_key, claims(unit.physical_id, clock))).code == "auth.key_revoked"
    auth.authenticate_jwt(sign(short, claims(unit.physical_id, clock)), audience=AUD)
    clock.advance(timedelta(hours=1))
    assert refused(auth, sign(short, claims(unit.physical_id, clock))).code == "auth.key_retired"


def test_headers_outside_the_profile_are_malformed(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock, ec_key: Any
) -> None:
    """An attacker-supplied key in the header (`jwk`, `jku`, `x5c`) is never used."""
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
    embedded = sign(ec_key, claims(unit.physical_id, clock), jwk=jwk)
    assert refused(auth, embedded).code == "auth.token_malformed"
    no_kid = jwt.encode(claims(unit.physical_id, clock), ec_key, algorithm="ES256")
    assert refused(auth, no_kid).code == "auth.token_malformed"
    assert refused(auth, "a.b.c").code == "auth.token_malformed"
    assert refused(auth, 42).code == "auth.token_malformed"


@pytest.mark.parametrize(
    ("state", "code"),
    [
        (DeviceState.SUSPENDED, "auth.unit_suspended"),
        (DeviceState.QUARANTINED, "auth.unit_quarantined"),
        (DeviceState.DECOMMISSIONED, "auth.unit_decommissioned"),
    ],
)
def test_units_out_of_service_are_refused(
    auth: DeviceAuthService,
    unit: PhysicalIdentity,
    clock: FixedClock,
    ec_key: Any,
    identity: IdentityService,
    state: DeviceState,
    code: str,
) -> None:
    identity.set_state(unit.physical_id, state, actor=ACTOR)
    error = refused(auth, sign(ec_key, claims(unit.physical_id, clock)))
    assert (error.code, error.status) == (code, 403)


def test_operational_certificate_key_signs_tokens_until_revoked(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock, pki: PkiService
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    issued = pki.issue_from_csr(make_csr(key), unit.physical_id, Profile.DEVICE, actor=ACTOR)
    thumbprint = _b64(issued.certificate.fingerprint(hashes.SHA256()))
    body = claims(unit.physical_id, clock)
    token = jwt.encode(body, key, algorithm="ES256", headers={"x5t#S256": thumbprint})
    device = auth.authenticate_jwt(token, audience=AUD)
    assert device.credential_id == serial_text(issued.serial)
    pki.revoke(issued.serial, "keyCompromise", actor=ACTOR)
    again = jwt.encode(
        claims(unit.physical_id, clock), key, algorithm="ES256", headers={"x5t#S256": thumbprint}
    )
    assert refused(auth, again).code == "auth.key_revoked"
    unknown = jwt.encode(body, key, algorithm="ES256", headers={"x5t#S256": "A" * 43})
    assert refused(auth, unknown).code == "auth.key_unknown"


def test_key_registration_rules(
    auth: DeviceAuthService, unit: PhysicalIdentity, spare: PhysicalIdentity, db: Database
) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for bad in (pem_of(rsa_key), pem_of(ec.generate_private_key(ec.SECP384R1())), b"junk"):  # type: ignore[arg-type]
        with pytest.raises(InvalidDeviceKey):
            auth.public_keys.register(unit.physical_id, bad, actor=ACTOR)
    keys = [ed25519.Ed25519PrivateKey.generate() for _ in range(4)]
    for key in keys[:3]:
        auth.public_keys.register(unit.physical_id, pem_of(key), actor=ACTOR)
    with pytest.raises(DeviceKeyExists):
        auth.public_keys.register(unit.physical_id, pem_of(keys[3]), actor=ACTOR)
    with pytest.raises(DeviceKeyExists):  # a key belongs to one unit
        auth.public_keys.register(spare.physical_id, pem_of(keys[0]), actor=ACTOR)
    der = (
        keys[3]
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    auth.public_keys.revoke(key_id_of(keys[0].public_key()), actor=ACTOR)
    assert auth.public_keys.register(unit.physical_id, der, actor=ACTOR).key_id == key_id_of(
        keys[3].public_key()
    )
    assert len(auth.public_keys.list_for(unit.physical_id)) == 4
    assert event_types(db).count("device_credential.added") == 4
    assert event_types(db).count("device_credential.revoked") == 1


_header_values = st.none() | st.booleans() | st.integers() | st.text(max_size=70)
_headers = st.dictionaries(
    st.sampled_from(["alg", "typ", "kid", "x5t#S256", "jwk", "crit", "b64", "zip"]),
    st.sampled_from(["ES256", "EdDSA", "none", "HS256", "RS256", "es256", ""]) | _header_values,
    max_size=5,
)


@given(
    st.text(max_size=300)
    | st.binary(max_size=300)
    | _headers.map(lambda h: f"{_b64(json.dumps(h).encode())}.e30.c2ln")
)
def test_header_parser_refuses_or_returns_a_checked_header(value: Any) -> None:
    try:
        header = read_header(value)
    except (TokenMalformed, AlgorithmRefused):
        return
    assert header["alg"] in ("ES256", "EdDSA")
    assert set(header) <= {"alg", "typ", "kid", "x5t#S256"}
    assert ("kid" in header) != ("x5t#S256" in header)

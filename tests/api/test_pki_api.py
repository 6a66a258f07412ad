"""The CA over the API: hierarchy, issuance from CSRs, downloads, revocation, scopes, and bad
input (a precise 4xx and an unchanged database), on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

from devicetrust.api.routers.pki import preferred_representation
from devicetrust.auth import Scope
from devicetrust.domain import DeviceState
from devicetrust.domain.ids import new_physical_id
from devicetrust.identity import UnitSpec
from devicetrust.pki import CaRole
from devicetrust.runtime import Platform
from devicetrust.store.database import Database
from tests.api.conftest import MintKey
from tests.api.wire import assert_problem, bearer
from tests.conftest import snapshot_tables
from tests.pki.certs import ec_key, make_csr, tamper_signature
from tests.pki.company_pki import clear_key, company_ca, encrypted_key, pem

PKI = "/v1/pki"
PEM_CHAIN = "application/pem-certificate-chain"
PKIX_CERT = "application/pkix-cert"


@dataclass
class Ca:
    client: TestClient
    headers: dict[str, str]
    platform: Platform
    unit: str

    def issue(self, csr: bytes | str | None = None, **fields: Any) -> Any:
        body = {"csr": _text(csr or make_csr(ec_key())), "physical_id": self.unit, **fields}
        response = self.client.post(f"{PKI}/certificates", json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        return response.json()


def _text(csr: bytes | str) -> str:
    return csr.decode() if isinstance(csr, bytes) else csr


def _der_to_pem(der: bytes, label: str = "CERTIFICATE REQUEST") -> str:
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n"


def _unit(platform: Platform, state: DeviceState | None = None) -> str:
    unit = platform.identity.register(UnitSpec("arm-r7", {}), actor="factory")
    if state is not None:
        platform.identity.set_state(unit.physical_id, state, actor="test")
    return unit.physical_id


@pytest.fixture
def ca(client: TestClient, admin: dict[str, str], platform: Platform) -> Ca:
    created = client.post(f"{PKI}/init", headers=admin)
    assert created.status_code == 201, created.text
    return Ca(client, admin, platform, _unit(platform))


def test_init_creates_the_hierarchy_once(
    client: TestClient, admin: dict[str, str], db: Database
) -> None:
    created = client.post(f"{PKI}/init", json={"algorithm": "ecdsa-p384"}, headers=admin)
    assert created.status_code == 201, created.text
    body = created.json()
    assert [body[r]["role"] for r in ("root", "issuing", "manufacturing")] == [
        "root",
        "issuing",
        "manufacturing",
    ]
    assert {body[r]["algorithm"] for r in ("root", "issuing", "manufacturing")} == {"ecdsa-p384"}
    assert body["issuing"]["parent_id"] == body["root"]["ca_id"]
    assert len(body["ocsp_signers"]) == 2
    listed = client.get(f"{PKI}/cas", headers=admin).json()["items"]
    assert {ca["ca_id"] for ca in listed} == {
        body[r]["ca_id"] for r in ("root", "issuing", "manufacturing")
    }
    one = client.get(f"{PKI}/cas/{body['issuing']['ca_id']}", headers=admin).json()
    assert (
        x509.load_pem_x509_certificate(one["pem"].encode()).subject.rfc4514_string()
        == one["subject"]
    )

    before = snapshot_tables(db)
    assert_problem(client.post(f"{PKI}/init", headers=admin), 409, "pki.hierarchy_exists")
    assert snapshot_tables(db) == before


def test_issue_download_list_and_revoke(ca: Ca) -> None:
    client, headers = ca.client, ca.headers
    response = client.post(
        f"{PKI}/certificates",
        json={"csr": _text(make_csr(ec_key())), "physical_id": ca.unit, "lifetime_hours": 2},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    issued = response.json()
    serial = issued["serial"]
    assert response.headers["location"] == f"{PKI}/certificates/{serial}"
    certificate = x509.load_pem_x509_certificate(issued["pem"].encode())
    # openssl's form: upper-case hex, an even number of digits.
    assert serial == f"{certificate.serial_number:X}".zfill(len(serial)) and len(serial) % 2 == 0
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == ca.unit
    assert issued["physical_id"] == ca.unit and issued["profile"] == "device"
    assert (
        certificate.not_valid_after_utc - certificate.not_valid_before_utc
    ).total_seconds() <= 2 * 3600 + 600

    as_json = client.get(f"{PKI}/certificates/{serial}", headers=headers)
    assert as_json.headers["content-type"].startswith("application/json")
    assert as_json.json() == issued
    issuing = ca.platform.pki.active_ca().certificate
    for path, accept in (
        (f"{PKI}/certificates/{serial}", PEM_CHAIN),
        (f"{PKI}/certificates/{serial}.pem", "*/*"),
    ):
        chain = client.get(path, headers={**headers, "Accept": accept})
        assert chain.headers["content-type"].startswith(PEM_CHAIN)
        leaf, issuer = x509.load_pem_x509_certificates(chain.content)
        assert leaf == certificate and issuer == issuing
    for path, accept in (
        (f"{PKI}/certificates/{serial.lower()}", f"application/json;q=0.5, {PKIX_CERT}"),
        (f"{PKI}/certificates/{serial}.der", "*/*"),
    ):
        der = client.get(path, headers={**headers, "Accept": accept})
        assert der.headers["content-type"] == PKIX_CERT
        assert x509.load_der_x509_certificate(der.content) == certificate

    listed = client.get(f"{PKI}/certificates", params={"physical_id": ca.unit}, headers=headers)
    assert [c["serial"] for c in listed.json()["items"]] == [serial]

    revoked = client.post(
        f"{PKI}/certificates/{serial}/revoke", json={"reason": "keyCompromise"}, headers=headers
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revocation_reason"] == "keyCompromise"
    assert ca.platform.pki.get_certificate(serial).revoked
    active = client.get(
        f"{PKI}/certificates",
        params={"physical_id": ca.unit, "include_revoked": "false"},
        headers=headers,
    )
    assert active.json()["items"] == []


def test_chain_is_pem_for_openssl_verify(ca: Ca) -> None:
    for role, expected in (("issuing", 2), ("manufacturing", 2), ("root", 1)):
        chain = ca.client.get(f"{PKI}/chain", params={"role": role}, headers=ca.headers)
        assert chain.status_code == 200
        assert chain.headers["content-type"].startswith(PEM_CHAIN)
        certificates = x509.load_pem_x509_certificates(chain.content)
        assert len(certificates) == expected
        assert certificates[0] == ca.platform.pki.active_ca(CaRole(role)).certificate


def test_revoke_all_of_a_unit(ca: Ca) -> None:
    first, second = ca.issue(), ca.issue()
    response = ca.client.post(
        f"{PKI}/devices/{ca.unit}/revoke-all",
        json={"reason": "cessationOfOperation"},
        headers=ca.headers,
    )
    assert response.status_code == 200, response.text
    assert {c["serial"] for c in response.json()["items"]} == {first["serial"], second["serial"]}
    assert all(ca.platform.pki.get_certificate(s["serial"]).revoked for s in (first, second))


def test_rotation_and_import_of_a_company_root(ca: Ca, platform: Platform) -> None:
    old = platform.pki.active_ca().ca_id
    rotated = ca.client.post(f"{PKI}/cas/rotate-intermediate", json={}, headers=ca.headers)
    assert rotated.status_code == 201, rotated.text
    assert rotated.json()["role"] == "issuing" and rotated.json()["ca_id"] != old
    assert platform.pki.get_ca(old).status.value == "retired"

    now = platform.clock.now()
    root, root_key = company_ca(now, "Example Motors Root", path_length=2)
    body = {
        "certificate_pem": pem(root).decode(),
        "role": "root",
        "key_pem": encrypted_key(root_key).decode(),
        "key_password": "company-transport-password",
    }
    imported = ca.client.post(f"{PKI}/cas/import", json=body, headers=ca.headers)
    assert imported.status_code == 201, imported.text
    assert imported.json()["external"] is True
    assert "company-transport-password" not in imported.text


CsrCase = Callable[[Ca], dict[str, Any]]


def _csr_body(csr: bytes | str) -> CsrCase:
    return lambda ca: {"csr": _text(csr), "physical_id": ca.unit}


_ISSUE_CASES: dict[str, tuple[CsrCase, int, str]] = {
    "garbage CSR": (_csr_body("this is not a certificate request"), 400, "pki.csr_malformed"),
    "truncated CSR": (_csr_body(make_csr(ec_key())[:300]), 400, "pki.csr_malformed"),
    "bad CSR signature": (
        _csr_body(_der_to_pem(tamper_signature(make_csr(ec_key())))),
        400,
        "pki.csr_bad_signature",
    ),
    "CA:TRUE requested": (_csr_body(make_csr(ec_key(), ca=True)), 400, "pki.csr_forbidden_request"),
    "extra DNS name": (
        _csr_body(make_csr(ec_key(), dns=["evil.example"])),
        400,
        "pki.csr_forbidden_request",
    ),
    "RSA-1024 key": (
        _csr_body(make_csr(rsa.generate_private_key(65537, 1024))),
        400,
        "pki.weak_key",
    ),
    "secp256k1 key": (_csr_body(make_csr(ec_key(ec.SECP256K1()))), 400, "pki.weak_key"),
    "unknown physical id": (
        lambda ca: {"csr": _text(make_csr(ec_key())), "physical_id": new_physical_id()},
        404,
        "identity.physical_not_found",
    ),
    "malformed physical id": (
        lambda ca: {"csr": _text(make_csr(ec_key())), "physical_id": "robot-12"},
        400,
        "identity.invalid_physical_id",
    ),
    "quarantined unit": (
        lambda ca: {
            "csr": _text(make_csr(ec_key())),
            "physical_id": _unit(ca.platform, DeviceState.QUARANTINED),
        },
        409,
        "pki.unit_not_live",
    ),
    "CA profile": (
        lambda ca: {"csr": _text(make_csr(ec_key())), "physical_id": ca.unit, "profile": "ca"},
        400,
        "pki.invalid_request",
    ),
    "lifetime beyond the profile": (
        lambda ca: {**_csr_body(make_csr(ec_key()))(ca), "lifetime_hours": 24 * 3650},
        400,
        "pki.invalid_request",
    ),
    "unknown field": (
        lambda ca: {**_csr_body(make_csr(ec_key()))(ca), "subject": "CN=admin"},
        422,
        "request.invalid_body",
    ),
}


@pytest.mark.parametrize("case", list(_ISSUE_CASES), ids=list(_ISSUE_CASES))
def test_bad_issuance_requests_are_refused_and_change_nothing(
    ca: Ca, db: Database, case: str
) -> None:
    make_body, status, code = _ISSUE_CASES[case]
    body = make_body(ca)
    before = snapshot_tables(db)
    response = ca.client.post(f"{PKI}/certificates", json=body, headers=ca.headers)
    assert_problem(response, status, code)
    assert snapshot_tables(db) == before


def test_bad_revocations_and_reads_are_refused_and_change_nothing(ca: Ca, db: Database) -> None:
    serial = ca.issue()["serial"]
    unknown = "7F" + "00" * 18
    before = snapshot_tables(db)
    cases = [
        ("GET", f"{PKI}/certificates/{unknown}", None, 404, "pki.certificate_not_found"),
        ("GET", f"{PKI}/certificates/{unknown}.der", None, 404, "pki.certificate_not_found"),
        ("GET", f"{PKI}/certificates/xyz", None, 400, "pki.invalid_serial"),
        ("GET", f"{PKI}/cas/no-such-ca", None, 404, "pki.ca_not_found"),
        ("GET", f"{PKI}/chain?role=boss", None, 400, "request.invalid_parameter"),
        ("POST", f"{PKI}/certificates/{unknown}/revoke", {}, 404, "pki.certificate_not_found"),
        ("POST", f"{PKI}/certificates/00/revoke", {}, 400, "pki.invalid_serial"),
        (
            "POST",
            f"{PKI}/certificates/{serial}/revoke",
            {"reason": "because"},
            400,
            "pki.invalid_reason",
        ),
        (
            "POST",
            f"{PKI}/devices/{new_physical_id()}/revoke-all",
            {"reason": "superseded"},
            404,
            "identity.physical_not_found",
        ),
        ("POST", f"{PKI}/cas/rotate-intermediate", {"role": "root"}, 400, "pki.invalid_request"),
    ]
    for method, path, body, status, code in cases:
        response = ca.client.request(method, path, json=body, headers=ca.headers)
        assert_problem(response, status, code)
    assert snapshot_tables(db) == before


def test_bad_imports_are_refused_and_change_nothing(ca: Ca, db: Database) -> None:
    now = ca.platform.clock.now()
    leaf, leaf_key = company_ca(now, "Not a CA", ca=False)
    root, root_key = company_ca(now, "Example Motors Root", path_length=2)
    cases = [
        (
            {"certificate_pem": "junk", "role": "root", "key_pem": "x", "key_password": "p"},
            "pki.ca_certificate_invalid",
        ),
        (
            {
                "certificate_pem": pem(leaf).decode(),
                "role": "issuing",
                "key_pem": encrypted_key(leaf_key).decode(),
                "key_password": "company-transport-password",
            },
            "pki.ca_certificate_invalid",
        ),
        (
            {
                "certificate_pem": pem(root).decode(),
                "role": "root",
                "key_pem": clear_key(root_key).decode(),
            },
            "pki.key_not_protected",
        ),
        (
            {
                "certificate_pem": pem(root).decode(),
                "role": "root",
                "key_pem": encrypted_key(leaf_key).decode(),
                "key_password": "company-transport-password",
            },
            "pki.ca_key_mismatch",
        ),
    ]
    before = snapshot_tables(db)
    for body, code in cases:
        assert_problem(
            ca.client.post(f"{PKI}/cas/import", json=body, headers=ca.headers), 400, code
        )
    assert snapshot_tables(db) == before


def test_scopes(client: TestClient, mint: MintKey, ca: Ca, db: Database) -> None:
    reader = bearer(mint(Scope.PKI_READ))
    identity = bearer(mint(Scope.IDENTITY_READ, Scope.IDENTITY_WRITE))
    body = {"csr": _text(make_csr(ec_key())), "physical_id": ca.unit}
    before = snapshot_tables(db)
    assert client.get(f"{PKI}/certificates", headers=reader).status_code == 200
    assert_problem(
        client.post(f"{PKI}/certificates", json=body, headers=reader),
        403,
        "auth.insufficient_scope",
    )
    assert_problem(client.get(f"{PKI}/cas", headers=identity), 403, "auth.insufficient_scope")
    assert_problem(client.post(f"{PKI}/init"), 401, "auth.missing_key")
    assert snapshot_tables(db) == before
    writer = bearer(mint(Scope.PKI_WRITE))
    assert client.post(f"{PKI}/certificates", json=body, headers=writer).status_code == 201


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("text/html", "application/json"),
        (PEM_CHAIN, PEM_CHAIN),
        (f"{PKIX_CERT}, {PEM_CHAIN}", PKIX_CERT),
        (f"{PKIX_CERT};q=0.4, {PEM_CHAIN};q=0.9", PEM_CHAIN),
        (f"application/json;q=0.5, {PKIX_CERT}", PKIX_CERT),
        (f"{PKIX_CERT};q=0", "application/json"),
        (f"{PKIX_CERT};q=oops", "application/json"),
        (" Application/PKIX-Cert ; q=1", PKIX_CERT),
    ],
)
def test_accept_header_picks_the_representation(accept: str | None, chosen: str) -> None:
    assert preferred_representation(accept) == chosen

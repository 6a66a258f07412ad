"""Fixtures for provisioning: the registry, a CA hierarchy (manufacturing + issuing) and the
provisioning service over the `db` fixture (SQLite and PostgreSQL), with a fixed clock."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from devicetrust.domain import FixedClock
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.pki import Hierarchy, PkiService, Profile
from devicetrust.provisioning import (
    AttestationKind,
    DataPlane,
    ProvisioningService,
    RegistrationRequest,
    encode_token,
)
from devicetrust.store.database import Database
from devicetrust.vault import Vault

ACTOR = "operator:test"


@pytest.fixture
def vault(ca_vault: Vault) -> Vault:
    """The KEK that seals group keys; the same one protects the CA key files."""
    return ca_vault


@pytest.fixture
def service(
    db: Database,
    clock: FixedClock,
    identity: IdentityService,
    pki: PkiService,
    hierarchy: Hierarchy,
    vault: Vault,
) -> ProvisioningService:
    return ProvisioningService(
        db, clock, identity, pki, vault, data_plane=DataPlane("mqtt.example", 8883)
    )


@pytest.fixture
def units(identity: IdentityService) -> list[PhysicalIdentity]:
    return identity.register_batch(
        [UnitSpec("arm-r7", {"controller": f"C-{n:04d}"}) for n in range(4)], actor="factory"
    )


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def csr_for(key: ec.EllipticCurvePrivateKey) -> bytes:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(Encoding.PEM)


def token_request(
    physical_id: str,
    device_key: bytes | bytearray,
    clock: FixedClock,
    *,
    csr: bytes | None = None,
    exp: timedelta = timedelta(minutes=10),
    nonce: str | None = None,
    source: str = "10.0.0.1",
) -> RegistrationRequest:
    token = encode_token(
        device_key, physical_id, clock.now() + exp, nonce or secrets.token_urlsafe(16)
    )
    return RegistrationRequest(
        physical_id=physical_id,  # type: ignore[arg-type]
        method=AttestationKind.SYMMETRIC_KEY,
        csr=csr or csr_for(new_key()),
        evidence={"token": token},
        source=source,
    )


def birth_certificate(pki: PkiService, physical_id: str, key: ec.EllipticCurvePrivateKey) -> str:
    return pki.issue_from_csr(csr_for(key), physical_id, Profile.BIRTH, actor="factory").pem

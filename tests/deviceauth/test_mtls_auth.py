"""Client-certificate authentication over the real CA (`PkiService` on SQLite and PostgreSQL):
a device certificate maps to its unit and its registry identity; revoked certificates,
certificates of another CA and birth certificates are refused with the verifier's code; a
unit out of service, or no longer holding the name its certificate carries, is refused."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from devicetrust.deviceauth import (
    AuthLimits,
    AuthMethod,
    AuthRefused,
    CertificateNotAccepted,
    DeviceAuthService,
    device_verifier,
)
from devicetrust.domain import DeviceState, FixedClock
from devicetrust.domain.errors import ConfigurationError
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.pki import Hierarchy, IssuedCertificate, PkiService, Profile, serial_text
from devicetrust.store.database import Database
from tests.deviceauth.conftest import ACTOR, NAME, refusals
from tests.pki.certs import make_csr
from tests.pki.ocsp_fixtures import build_pki


def device_cert(pki: PkiService, unit: PhysicalIdentity) -> IssuedCertificate:
    key = ec.generate_private_key(ec.SECP256R1())
    return pki.issue_from_csr(make_csr(key), unit.physical_id, Profile.DEVICE, actor=ACTOR)


def der_chain(issued: IssuedCertificate, hierarchy: Hierarchy) -> list[bytes]:
    return [issued.certificate.public_bytes(Encoding.DER), hierarchy.issuing.der]


def refused(auth: DeviceAuthService, chain: list[bytes] | bytes) -> AuthRefused:
    with pytest.raises(AuthRefused) as caught:
        auth.authenticate_certificate(chain, entry_point="test")
    return caught.value


def test_device_certificate_maps_to_the_unit(
    auth: DeviceAuthService, unit: PhysicalIdentity, pki: PkiService, hierarchy: Hierarchy
) -> None:
    issued = device_cert(pki, unit)
    device = auth.authenticate_certificate(der_chain(issued, hierarchy))
    assert (device.physical_id, device.logical_name) == (unit.physical_id, NAME)
    assert device.method is AuthMethod.MTLS
    assert device.credential_id == serial_text(issued.serial)
    assert device.expires_at == issued.not_after
    pem = issued.certificate.public_bytes(Encoding.PEM)
    assert auth.authenticate_certificate(pem).physical_id == unit.physical_id


def test_revoked_certificate_keeps_the_verifiers_code_and_is_audited(
    auth: DeviceAuthService,
    unit: PhysicalIdentity,
    pki: PkiService,
    hierarchy: Hierarchy,
    db: Database,
) -> None:
    issued = device_cert(pki, unit)
    pki.revoke(issued.serial, "keyCompromise", actor=ACTOR)
    error = refused(auth, der_chain(issued, hierarchy))
    assert isinstance(error, CertificateNotAccepted)
    assert (error.code, error.status) == ("auth.cert_revoked", 401)
    entry = refusals(db)[-1]
    assert (entry["code"], entry["method"], entry["claimed_id"]) == (
        "auth.cert_revoked",
        "mtls",
        unit.physical_id,
    )


def test_certificate_of_another_ca_is_untrusted(
    auth: DeviceAuthService, unit: PhysicalIdentity, clock: FixedClock, tmp_path: Path
) -> None:
    """Same unit, same names, same profile: only the issuer differs."""
    stranger = build_pki(tmp_path, clock.now())
    leaf = stranger.leaf(unit.physical_id, NAME)
    chain = [leaf.public_bytes(Encoding.DER), stranger.issuing.public_bytes(Encoding.DER)]
    assert refused(auth, chain).code == "auth.cert_untrusted"


def test_birth_certificate_does_not_open_the_data_plane(
    auth: DeviceAuthService, identity: IdentityService, pki: PkiService, hierarchy: Hierarchy
) -> None:
    fresh = identity.register(UnitSpec("arm-r7", {"controller": "C-0009"}), actor="factory")
    key = ec.generate_private_key(ec.SECP256R1())
    birth = pki.issue_from_csr(make_csr(key), fresh.physical_id, Profile.BIRTH, actor=ACTOR)
    chain = [birth.certificate.public_bytes(Encoding.DER), hierarchy.manufacturing.der]
    assert refused(auth, chain).code == "auth.cert_untrusted"


def test_garbage_is_malformed(auth: DeviceAuthService, db: Database) -> None:
    assert refused(auth, [b"not a certificate"]).code == "auth.cert_malformed"
    assert refused(auth, []).code == "auth.cert_malformed"
    assert refusals(db)[-1]["claimed_id"] is None


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
    pki: PkiService,
    hierarchy: Hierarchy,
    identity: IdentityService,
    state: DeviceState,
    code: str,
) -> None:
    chain = der_chain(device_cert(pki, unit), hierarchy)
    identity.set_state(unit.physical_id, state, actor=ACTOR)
    error = refused(auth, chain)
    assert (error.code, error.status) == (code, 403)


def test_transferred_identity_is_not_carried_by_the_old_certificate(
    auth: DeviceAuthService,
    unit: PhysicalIdentity,
    spare: PhysicalIdentity,
    pki: PkiService,
    hierarchy: Hierarchy,
    identity: IdentityService,
) -> None:
    """Until the CA supersedes it, the old unit's certificate still names the logical
    identity; the unit is live, but it must not act as that identity any more."""
    chain = der_chain(device_cert(pki, unit), hierarchy)
    identity.transfer(NAME, spare.physical_id, actor=ACTOR)
    assert refused(auth, chain).code == "auth.identity_stale"


def test_replaced_unit_is_refused(
    auth: DeviceAuthService,
    unit: PhysicalIdentity,
    spare: PhysicalIdentity,
    pki: PkiService,
    hierarchy: Hierarchy,
    identity: IdentityService,
) -> None:
    old = der_chain(device_cert(pki, unit), hierarchy)
    identity.replace(NAME, spare.physical_id, actor=ACTOR)
    assert refused(auth, old).code == "auth.unit_decommissioned"
    new = der_chain(device_cert(pki, spare), hierarchy)
    assert auth.authenticate_certificate(new).logical_name == NAME


def test_renamed_identity_keeps_working_under_its_new_name(
    auth: DeviceAuthService,
    unit: PhysicalIdentity,
    pki: PkiService,
    hierarchy: Hierarchy,
    identity: IdentityService,
) -> None:
    chain = der_chain(device_cert(pki, unit), hierarchy)
    identity.rename(NAME, "line-03-left-welding-13", actor=ACTOR)
    assert auth.authenticate_certificate(chain).logical_name == "line-03-left-welding-13"


def test_method_not_allowed_and_no_verifier(
    db: Database,
    clock: FixedClock,
    vault: object,
    unit: PhysicalIdentity,
    pki: PkiService,
    hierarchy: Hierarchy,
) -> None:
    tokens_only = AuthLimits(methods=frozenset({AuthMethod.HMAC_TOKEN}))
    service = DeviceAuthService(
        db,
        clock,
        vault,  # type: ignore[arg-type]
        cert_verifier=device_verifier(pki, clock),
        limits_for=lambda _pid: tokens_only,
    )
    chain = der_chain(device_cert(pki, unit), hierarchy)
    error = refused(service, chain)
    assert (error.code, error.status) == ("auth.method_not_allowed", 403)
    bare = DeviceAuthService(db, clock, vault)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        bare.authenticate_certificate(chain)
    bare.use_cert_verifier(device_verifier(pki, clock))
    assert bare.authenticate_certificate(chain).physical_id == unit.physical_id


def test_a_kept_path_still_sees_revocation_state_and_expiry(
    auth: DeviceAuthService,
    unit: PhysicalIdentity,
    pki: PkiService,
    hierarchy: Hierarchy,
    identity: IdentityService,
    clock: FixedClock,
) -> None:
    """The verified path of a leaf is kept between authentications; what can change is not:
    the unit's state, the certificate's status (a hold, then its release), and the time."""
    issued = device_cert(pki, unit)
    chain = der_chain(issued, hierarchy)
    auth.authenticate_certificate(chain)
    identity.set_state(unit.physical_id, DeviceState.SUSPENDED, actor=ACTOR)
    assert refused(auth, chain).code == "auth.unit_suspended"
    identity.set_state(unit.physical_id, DeviceState.ACTIVE, actor=ACTOR)
    pki.revoke(issued.serial, "certificateHold", actor=ACTOR)
    assert refused(auth, chain).code == "auth.cert_revoked"
    pki.release_hold(issued.serial, actor=ACTOR)
    auth.authenticate_certificate(chain)
    clock.advance(issued.not_after - clock.now() + timedelta(seconds=1))
    assert refused(auth, chain).code == "auth.cert_expired"


def test_a_kept_path_answers_only_the_same_presented_chain(
    auth: DeviceAuthService, unit: PhysicalIdentity, pki: PkiService, hierarchy: Hierarchy
) -> None:
    """A chain the verifier refuses for a certificate after the leaf (which it otherwise
    ignores) stays refused after the same leaf was accepted alone."""
    issued = device_cert(pki, unit)
    leaf = issued.certificate.public_bytes(Encoding.DER)
    auth.authenticate_certificate([leaf])
    assert refused(auth, [leaf, b"\x30\x03\x02\x01\x01"]).code == "auth.cert_malformed"
    assert refused(auth, [leaf] * 9).code == "auth.cert_malformed"

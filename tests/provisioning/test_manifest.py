"""Signed manufacturing manifests: export at the factory, verify and import atomically at the
operator; a tampered, untrusted or invalid manifest changes nothing."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from devicetrust.domain import DeviceState
from devicetrust.domain.errors import DeviceTrustError
from devicetrust.domain.ids import new_physical_id
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.provisioning import (
    Allocation,
    AllocationPolicy,
    AttestationKind,
    ProvisioningService,
)
from devicetrust.provisioning.manifest import manifest_body, sign_manifest
from devicetrust.store.database import Database
from tests.conftest import snapshot_tables
from tests.provisioning.conftest import ACTOR

MANUAL = Allocation(AllocationPolicy.MANUAL)


def _public_pem(key: ed25519.Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _units(n: int) -> list[dict[str, object]]:
    return [
        {
            "physical_id": new_physical_id(),
            "model": "arm-r7",
            "hardware_serials": {"controller": f"C-{i}"},
            "attestation": "x509",
            "key_fingerprint": "sha256:" + f"{i:02x}" * 32,
        }
        for i in range(n)
    ]


def test_manifest_round_trip(
    service: ProvisioningService, identity: IdentityService, clock: object
) -> None:
    factory_key = ed25519.Ed25519PrivateKey.generate()
    service.manifests.add_factory_key("factory-1", _public_pem(factory_key), actor=ACTOR)
    unit = identity.register(UnitSpec("arm-r7", {"controller": "C-1"}), actor="factory")
    service.enrollments.create_individual(
        unit.physical_id,
        AttestationKind.X509,
        MANUAL,
        key_fingerprint="sha256:" + "ab" * 32,
        actor=ACTOR,
    )
    exported = service.manifests.export_manifest(
        [unit.physical_id], factory="factory-1", batch="B1", key=factory_key
    )
    document = json.loads(exported)
    assert document["manifest"]["units"][0]["key_fingerprint"] == "sha256:" + "ab" * 32
    # another installation imports it: simulate with fresh ids
    units = _units(3)
    signed = sign_manifest(
        manifest_body(
            "factory-1", "B2", units, identity.get_physical(unit.physical_id).manufactured_at
        ),
        "factory-1",
        factory_key,
    )
    created = service.manifests.import_manifest(signed, MANUAL, actor=ACTOR)
    assert created == [u["physical_id"] for u in units]
    for pid in created:
        assert identity.get_physical(pid).state is DeviceState.MANUFACTURED
        assert service.enrollments.get(f"{pid}/x509").key_fingerprint is not None


@pytest.mark.parametrize("fault", ["tampered", "untrusted", "bad unit", "not json"])
def test_bad_manifests_change_nothing(
    fault: str, service: ProvisioningService, db: Database
) -> None:
    factory_key = ed25519.Ed25519PrivateKey.generate()
    service.manifests.add_factory_key("factory-1", _public_pem(factory_key), actor=ACTOR)
    units = _units(2)
    signer = factory_key if fault != "untrusted" else ed25519.Ed25519PrivateKey.generate()
    if fault == "bad unit":
        units[1]["key_fingerprint"] = "nope"
    from datetime import UTC, datetime

    signed = sign_manifest(
        manifest_body("factory-1", "B", units, datetime.now(UTC)), "factory-1", signer
    )
    if fault == "tampered":
        doc = json.loads(signed)
        doc["manifest"]["units"][0]["model"] = "evil"
        signed = json.dumps(doc).encode()
    if fault == "not json":
        signed = b"{"
    before = snapshot_tables(db)
    with pytest.raises(DeviceTrustError) as err:
        service.manifests.import_manifest(signed, MANUAL, actor=ACTOR)
    assert err.value.code in {
        "provisioning.manifest_signature_invalid",
        "provisioning.manifest_invalid",
    }
    assert snapshot_tables(db) == before

"""Manufacturing manifests: a factory's signed list of the units of a batch, with their
attestation material, imported by the operator in one transaction.

File format (JSON):

    {"manifest": {"format": "devicetrust-manifest-v1", "factory": <name>, "batch": <id>,
                  "created_at": <ISO 8601>, "units": [
                    {"physical_id", "model", "hardware_serials": {...},
                     "attestation": "x509" | "tpm" | null,
                     "key_fingerprint": "sha256:<hex>"            (x509)
                     "tpm_ek_public": <base64>, "tpm_ek_certificate": <base64> (tpm)}]},
     "signature": {"factory": <name>, "algorithm": "ed25519" | "ecdsa-p256-sha256",
                   "value": <base64url>}}

The signature is detached, over the canonical JSON of `manifest` (sorted keys, no blanks,
ASCII). `import_manifest` checks, in this order: the file parses and has that shape
(provisioning.manifest_invalid); the factory is trusted (a key added with `add_factory_key`,
not revoked) and the signature verifies (provisioning.manifest_signature_invalid); every
unit is valid and new. Then it creates every physical identity and individual enrollment,
with their audit entries and events, in one transaction: all or none.

Never holds a factory private key beyond the `export_manifest` call that signs with it, never
imports a unit twice, and never puts secret material in a manifest (symmetric keys are
derived at the factory and never listed).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from sqlalchemy import select
from sqlalchemy.orm import Session

from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import Conflict, InvalidInput
from devicetrust.domain.events import EventType
from devicetrust.domain.ids import PhysicalId, parse_physical_id
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.provisioning._rows import to_enrollment
from devicetrust.provisioning.allocation import check_allocation
from devicetrust.provisioning.errors import (
    EnrollmentExists,
    ManifestInvalid,
    ManifestSignatureInvalid,
)
from devicetrust.provisioning.records import Allocation, AttestationKind, EnrollmentKind
from devicetrust.provisioning.symmetric import b64url, b64url_decode
from devicetrust.store.database import Database
from devicetrust.store.journal import record
from devicetrust.store.models import (
    EnrollmentRow,
    FactoryKeyRow,
    PhysicalIdentityRow,
)

FORMAT = "devicetrust-manifest-v1"
MAX_UNITS = 10_000
MAX_BYTES = 32 * 1024 * 1024
FactoryPrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
FactoryPublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def canonical(manifest: Mapping[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign_manifest(manifest: Mapping[str, Any], factory: str, key: FactoryPrivateKey) -> bytes:
    """The signed manifest file (what a factory ships with a batch)."""
    body = canonical(manifest)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        algorithm, value = "ed25519", key.sign(body)
    elif isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        algorithm, value = "ecdsa-p256-sha256", key.sign(body, ec.ECDSA(hashes.SHA256()))
    else:
        raise ManifestInvalid("a factory signs with Ed25519 or ECDSA P-256")
    signed = {
        "manifest": dict(manifest),
        "signature": {"factory": factory, "algorithm": algorithm, "value": b64url(value)},
    }
    return json.dumps(signed, sort_keys=True, indent=1).encode()


def _public_key(pem: str) -> FactoryPublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise InvalidInput("provisioning.invalid_factory_key", "not a PEM public key") from exc
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
        return key
    raise InvalidInput("provisioning.invalid_factory_key", "factory keys are Ed25519 or P-256")


def _verify(key: FactoryPublicKey, algorithm: object, signature: bytes, body: bytes) -> None:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey) and algorithm == "ed25519":
            key.verify(signature, body)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm == "ecdsa-p256-sha256":
            key.verify(signature, body, ec.ECDSA(hashes.SHA256()))
        else:
            raise InvalidSignature
    except InvalidSignature as exc:
        raise ManifestSignatureInvalid("the manifest's signature does not verify") from exc


def _parse(data: bytes) -> tuple[dict[str, Any], Mapping[str, Any]]:
    if not isinstance(data, bytes | bytearray) or not 0 < len(data) <= MAX_BYTES:
        raise ManifestInvalid(f"a manifest file is 1 byte to {MAX_BYTES} bytes of JSON")
    try:
        signed = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestInvalid("the manifest file is not JSON") from exc
    if not isinstance(signed, dict) or set(signed) != {"manifest", "signature"}:
        raise ManifestInvalid("a manifest file holds exactly `manifest` and `signature`")
    manifest, signature = signed["manifest"], signed["signature"]
    if not isinstance(manifest, dict) or not isinstance(signature, dict):
        raise ManifestInvalid("`manifest` and `signature` are objects")
    if manifest.get("format") != FORMAT:
        raise ManifestInvalid(f"unknown manifest format; expected {FORMAT}")
    units = manifest.get("units")
    if not isinstance(units, list) or not 0 < len(units) <= MAX_UNITS:
        raise ManifestInvalid(f"a manifest lists 1-{MAX_UNITS} units")
    return manifest, signature


def _b64(value: object, what: str) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 16384:
        raise ManifestInvalid(f"{what} is base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ManifestInvalid(f"{what} is not base64") from exc


def _b64text(value: bytes | None) -> str | None:
    return base64.b64encode(value).decode("ascii") if value is not None else None


class ManifestOps:
    def __init__(self, db: Database, clock: Clock, identity: IdentityService) -> None:
        self._db = db
        self._clock = clock
        self._identity = identity

    def export_manifest(
        self,
        physical_ids: Sequence[str],
        *,
        factory: str,
        batch: str,
        key: FactoryPrivateKey,
    ) -> bytes:
        """The signed manifest of these units: each with its x509 or TPM individual
        enrollment's public material (or `attestation: null`)."""
        if not 0 < len(physical_ids) <= MAX_UNITS:
            raise ManifestInvalid(f"a manifest lists 1-{MAX_UNITS} units")
        units: list[dict[str, Any]] = []
        with self._db.read() as session:
            for raw in physical_ids:
                pid = parse_physical_id(raw)
                row = session.get(PhysicalIdentityRow, pid)
                if row is None:
                    raise ManifestInvalid(f"no physical identity {pid}", physical_id=pid)
                unit: dict[str, Any] = {
                    "physical_id": pid,
                    "model": row.model,
                    "hardware_serials": dict(row.hardware_serials),
                    "attestation": None,
                }
                enrollment = (
                    session.execute(
                        select(EnrollmentRow).where(
                            EnrollmentRow.physical_id == pid,
                            EnrollmentRow.attestation.in_(
                                [AttestationKind.X509.value, AttestationKind.TPM.value]
                            ),
                        )
                    )
                    .scalars()
                    .first()
                )
                if enrollment is not None and enrollment.attestation == "x509":
                    unit["attestation"] = "x509"
                    unit["key_fingerprint"] = f"sha256:{enrollment.key_fingerprint}"
                elif enrollment is not None:
                    unit["attestation"] = "tpm"
                    unit["tpm_ek_public"] = _b64text(enrollment.tpm_ek_public)
                    unit["tpm_ek_certificate"] = _b64text(enrollment.tpm_ek_certificate)
                units.append(unit)
        body = manifest_body(factory, batch, units, self._clock.now())
        return sign_manifest(body, factory, key)

    def add_factory_key(self, name: str, public_key_pem: str, *, actor: str) -> str:
        """Trust `name`'s public key (Ed25519 or P-256) to sign manifests; returns its id."""
        if not isinstance(name, str) or not 1 <= len(name) <= 128:
            raise InvalidInput("provisioning.invalid_factory_key", "a factory name is 1-128 chars")
        _public_key(public_key_pem)
        now = self._clock.now()
        with self._db.transaction() as session:
            if session.execute(select(FactoryKeyRow.id).where(FactoryKeyRow.name == name)).first():
                raise EnrollmentExists(f"factory {name!r} already has a key", factory=name)
            row = FactoryKeyRow(
                id=str(uuid.uuid4()),
                name=name,
                public_key_pem=public_key_pem,
                created_at=now,
                created_by=actor,
                revoked_at=None,
            )
            session.add(row)
            record(
                session,
                at=now,
                actor=actor,
                event_type=EventType.FACTORY_KEY_ADDED,
                subject=name,
                payload={"factory": name, "key_id": row.id},
            )
            return row.id

    def import_manifest(
        self, data: bytes, allocation: Allocation, *, actor: str
    ) -> list[PhysicalId]:
        """Verify a signed manifest, then create its units and their individual enrollments
        (with `allocation`) in one transaction; returns the units' physical ids."""
        check_allocation(allocation)
        manifest, signature = _parse(data)
        factory = signature.get("factory")
        try:
            value = b64url_decode(str(signature.get("value", "")))
        except (ValueError, binascii.Error) as exc:
            raise ManifestInvalid("the signature value is not base64url") from exc
        now = self._clock.now()
        with self._db.transaction() as session:
            key_row = session.execute(
                select(FactoryKeyRow).where(
                    FactoryKeyRow.name == str(factory)[:128], FactoryKeyRow.revoked_at.is_(None)
                )
            ).scalar_one_or_none()
            if key_row is None or manifest.get("factory") != factory:
                raise ManifestSignatureInvalid("the manifest is not signed by a trusted factory")
            _verify(
                _public_key(key_row.public_key_pem),
                signature.get("algorithm"),
                value,
                canonical(manifest),
            )
            created: list[PhysicalId] = []
            for index, unit in enumerate(manifest["units"]):
                created.append(
                    self._import_unit(session, unit, index, allocation, now=now, actor=actor)
                )
            record(
                session,
                at=now,
                actor=actor,
                event_type=EventType.MANIFEST_IMPORTED,
                subject=str(manifest.get("batch", ""))[:200],
                payload={"factory": factory, "batch": manifest.get("batch"), "units": len(created)},
            )
        return created

    def _import_unit(
        self,
        session: Session,
        unit: object,
        index: int,
        allocation: Allocation,
        *,
        now: datetime,
        actor: str,
    ) -> PhysicalId:
        if not isinstance(unit, dict):
            raise ManifestInvalid(f"unit {index} is not an object", index=index)
        try:
            pid = parse_physical_id(str(unit.get("physical_id", "")))
        except InvalidInput as exc:
            raise ManifestInvalid(f"unit {index}: {exc.message}", index=index) from exc
        spec = UnitSpec(
            model=unit.get("model"),  # type: ignore[arg-type]  # validated by the registry
            hardware_serials=unit.get("hardware_serials", {}),
            physical_id=pid,
        )
        try:  # joins the import's transaction: all units or none
            self._identity.register_batch([spec], actor=actor)
        except InvalidInput as exc:
            raise ManifestInvalid(f"unit {index}: {exc.message}", index=index) from exc
        except Conflict as exc:
            message = f"unit {index}: {pid} is already registered"
            raise EnrollmentExists(message, index=index) from exc
        session.flush()  # the unit before its enrollment (no ORM relationship orders them)
        attestation = unit.get("attestation")
        if attestation is None:
            return pid
        row = self._enrollment_row(unit, pid, index, allocation, now=now, actor=actor)
        session.add(row)
        record(
            session,
            at=now,
            actor=actor,
            event_type=EventType.ENROLLMENT_CREATED,
            subject=row.name,
            payload=to_enrollment(row).to_json(),
        )
        return pid

    @staticmethod
    def _enrollment_row(
        unit: dict[str, Any],
        pid: PhysicalId,
        index: int,
        allocation: Allocation,
        *,
        now: datetime,
        actor: str,
    ) -> EnrollmentRow:
        kind = unit.get("attestation")
        fingerprint: str | None = None
        ek_public = ek_cert = None
        if kind == AttestationKind.X509.value:
            raw = str(unit.get("key_fingerprint", "")).lower().removeprefix("sha256:")
            if len(raw) != 64 or not set(raw) <= set("0123456789abcdef"):
                raise ManifestInvalid(f"unit {index}: key_fingerprint is sha256:<64 hex>")
            fingerprint = raw
        elif kind == AttestationKind.TPM.value:
            ek_public = _b64(unit.get("tpm_ek_public"), f"unit {index} tpm_ek_public")
            ek_cert = _b64(unit.get("tpm_ek_certificate"), f"unit {index} tpm_ek_certificate")
            if not ek_public:
                raise ManifestInvalid(f"unit {index}: a TPM unit lists its EK public key")
        else:
            raise ManifestInvalid(f"unit {index}: attestation is x509, tpm or null")
        return EnrollmentRow(
            id=str(uuid.uuid4()),
            name=f"{pid}/{kind}",
            kind=EnrollmentKind.INDIVIDUAL.value,
            attestation=kind,
            physical_id=pid,
            key_fingerprint=fingerprint,
            ca_id=None,
            sealed_key=None,
            tpm_ek_public=ek_public,
            tpm_ek_certificate=ek_cert,
            allocation=allocation.policy.value,
            static_name=allocation.static_name,
            pool_pattern=allocation.pool_pattern,
            reprovision=allocation.reprovision.value,
            replaces=None,
            require_hardware_key=False,
            enabled=True,
            expires_at=None,
            created_at=now,
            created_by=actor,
            updated_at=now,
        )


def manifest_body(
    factory: str, batch: str, units: Sequence[Mapping[str, Any]], created_at: datetime
) -> dict[str, Any]:
    """The unsigned manifest a factory builds for a batch."""
    return {
        "format": FORMAT,
        "factory": factory,
        "batch": batch,
        "created_at": created_at.isoformat(),
        "units": [dict(u) for u in units],
    }

"""Row lookups and row-to-record conversion for the provisioning modules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, select
from sqlalchemy.orm import Session

from devicetrust.domain.ids import LogicalName, PhysicalId
from devicetrust.provisioning.errors import EnrollmentNotFound
from devicetrust.provisioning.records import (
    Allocation,
    AllocationPolicy,
    AttestationKind,
    Enrollment,
    EnrollmentKind,
    Registration,
    RegistrationStatus,
    Reprovision,
)
from devicetrust.store.models import EnrollmentRow, RegistrationRow


def to_enrollment(row: EnrollmentRow | Row[Any]) -> Enrollment:
    """From the ORM row or a plain row of all its columns."""
    return Enrollment(
        enrollment_id=row.id,
        name=row.name,
        kind=EnrollmentKind(row.kind),
        attestation=AttestationKind(row.attestation),
        allocation=Allocation(
            policy=AllocationPolicy(row.allocation),
            static_name=LogicalName(row.static_name) if row.static_name else None,
            pool_pattern=row.pool_pattern,
            reprovision=Reprovision(row.reprovision),
        ),
        enabled=row.enabled,
        created_at=row.created_at,
        created_by=row.created_by,
        physical_id=PhysicalId(row.physical_id) if row.physical_id else None,
        key_fingerprint=row.key_fingerprint,
        ca_id=row.ca_id,
        sealed_key=row.sealed_key,
        tpm_ek_public=row.tpm_ek_public,
        tpm_ek_certificate=row.tpm_ek_certificate,
        expires_at=row.expires_at,
        replaces=LogicalName(row.replaces) if row.replaces else None,
        require_hardware_key=row.require_hardware_key,
    )


# Plain rows, not ORM objects: read on every attempt, never changed by it.
_CANDIDATES = (
    select(*cast(Table, EnrollmentRow.__table__).c)
    .where(
        EnrollmentRow.attestation == bindparam("method"),
        (EnrollmentRow.physical_id == bindparam("unit"))
        | (EnrollmentRow.kind == EnrollmentKind.GROUP.value),
    )
    .order_by(EnrollmentRow.kind.desc(), EnrollmentRow.created_at, EnrollmentRow.id)
)


def candidate_rows(
    session: Session, physical_id: PhysicalId, method: AttestationKind
) -> Sequence[Row[Any]]:
    """The unit's individual enrollment of `method` and the method's groups (all columns)."""
    return session.execute(_CANDIDATES, {"method": method.value, "unit": physical_id}).all()


def enrollment_row(session: Session, ref: str, *, lock: bool = False) -> EnrollmentRow:
    """By id or by name."""
    if not isinstance(ref, str) or not 0 < len(ref) <= 128:
        raise EnrollmentNotFound("an enrollment is named by its id or name")
    stmt = select(EnrollmentRow).where((EnrollmentRow.id == ref) | (EnrollmentRow.name == ref))
    row = session.execute(stmt.with_for_update() if lock else stmt).scalars().first()
    if row is None:
        raise EnrollmentNotFound(f"no enrollment {ref[:64]!r}", enrollment=ref[:64])
    return row


def to_registration(row: RegistrationRow) -> Registration:
    return Registration(
        physical_id=PhysicalId(row.physical_id),
        enrollment_id=row.enrollment_id,
        status=RegistrationStatus(row.status),
        logical_name=LogicalName(row.logical_name) if row.logical_name else None,
        requested_at=row.requested_at,
        updated_at=row.updated_at,
        serial=row.serial,
    )

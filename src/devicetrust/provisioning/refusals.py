"""The audit entry of a refused provisioning-side attempt (a provisioning, a challenge, an EST
re-enrollment, a boot re-attestation): who claimed to be which unit, from where, and the
refusal's code (`audit_refusal`), and the refusal of a disabled or expired enrollment
(`check_active`). Never the evidence, a token, a CSR or a certificate. Written in a transaction
of its own, after the attempt's own one rolled back, so a refusal changes nothing else."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import DeviceTrustError, InvalidInput
from devicetrust.domain.ids import PhysicalId, parse_physical_id
from devicetrust.provisioning.errors import EnrollmentRefused
from devicetrust.provisioning.records import Enrollment
from devicetrust.store.database import Database
from devicetrust.store.journal import append_audit


def claimed_unit(claimed: str) -> PhysicalId:
    """The physical id a caller claimed, or `unparsed` when it is not one."""
    try:
        return parse_physical_id(claimed)
    except InvalidInput:
        return PhysicalId("unparsed")


def audit_refusal(
    db: Database,
    clock: Clock,
    subject: PhysicalId,
    action: str,
    exc: DeviceTrustError,
    **details: Any,
) -> None:
    """One audit entry `action` on `subject` (actor `device:<subject>`) with the code of
    `exc` and `details` (method, source: short strings)."""
    with db.transaction() as session:
        append_audit(
            session,
            at=clock.now(),
            actor=f"device:{subject}",
            action=action,
            subject=subject,
            details={"code": exc.code, **details},
        )


def check_active(enrollment: Enrollment, now: datetime) -> None:
    """Refuse a disabled or expired enrollment."""
    if not enrollment.enabled:
        raise EnrollmentRefused(
            "provisioning.enrollment_disabled", f"enrollment {enrollment.name!r} is disabled"
        )
    if enrollment.expires_at is not None and now >= enrollment.expires_at:
        raise EnrollmentRefused(
            "provisioning.enrollment_expired", f"enrollment {enrollment.name!r} has expired"
        )

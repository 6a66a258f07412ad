"""The audit log: read entries in sequence order, and verify the hash chain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from devicetrust.api.platform import PlatformDep
from devicetrust.api.schemas import AuditEntryOut, AuditPage, AuditVerifyOut, ChainBreakOut
from devicetrust.api.security import requires
from devicetrust.auth import ApiKey, Scope

router = APIRouter(prefix="/v1/audit", tags=["audit"])

Auditor = Annotated[ApiKey, requires(Scope.AUDIT_READ)]


@router.get("", summary="Audit entries after a sequence number, oldest first")
def entries(
    _key: Auditor,
    platform: PlatformDep,
    after: Annotated[
        int, Query(ge=0, le=2**63 - 1, description="last sequence number already read")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    subject: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> AuditPage:
    found = platform.audit.entries(after_seq=after, limit=limit, subject=subject)
    items = [AuditEntryOut.of(e) for e in found]
    return AuditPage(items=items, next_after=items[-1].seq if items else None)


@router.get("/verify", summary="Verify the whole hash chain")
def verify(_key: Auditor, platform: PlatformDep) -> AuditVerifyOut:
    result = platform.audit.verify()
    broken = result.first_break
    return AuditVerifyOut(
        ok=result.ok,
        count=result.count,
        head_seq=result.head_seq,
        first_break=ChainBreakOut(seq=broken.seq, reason=broken.reason) if broken else None,
    )

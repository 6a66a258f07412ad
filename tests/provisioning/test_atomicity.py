"""A provisioning is one transaction: a fault at any step after the checks (here: the CA
failing to issue) leaves no binding, no new logical identity, no registration and no burnt
token; the device simply tries again with the same request and succeeds."""

from __future__ import annotations

from typing import Any

import pytest

from devicetrust.domain import DeviceState, FixedClock
from devicetrust.domain.errors import DeviceTrustError
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.identity import IdentityService
from devicetrust.pki import PkiService
from devicetrust.provisioning import (
    Allocation,
    AllocationPolicy,
    ProvisioningService,
    RegistrationStatus,
)
from devicetrust.store.database import Database
from tests.conftest import snapshot_tables
from tests.provisioning.conftest import ACTOR, token_request


class CaDown(DeviceTrustError):
    code = "test.ca_down"


def test_a_fault_during_issuance_undoes_the_whole_provisioning(
    service: ProvisioningService,
    identity: IdentityService,
    pki: PkiService,
    db: Database,
    clock: FixedClock,
    units: list[PhysicalIdentity],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pool = Allocation(AllocationPolicy.POOL, pool_pattern="line-03-left-welding-{01..03}")
    service.enrollments.create_symmetric_group("line-03", pool, actor=ACTOR)
    pid = units[0].physical_id
    request = token_request(pid, service.enrollments.derive_device_key("line-03", pid), clock)
    issue = pki.issue_from_csr

    def failing(*args: Any, **kwargs: Any) -> Any:
        issue(*args, **kwargs)  # the certificate row is written, then the fault hits
        raise CaDown("test.ca_down", "the CA failed after signing")

    before = snapshot_tables(db)
    monkeypatch.setattr(pki, "issue_from_csr", failing)
    with pytest.raises(CaDown):
        service.provision(request)
    after = snapshot_tables(db)
    changed = {t for t in after if after[t] != before[t]}
    # only the refusal's own audit entry was written
    assert changed <= {"audit_log", "audit_head"}, changed
    assert identity.get_physical(pid).state is DeviceState.MANUFACTURED
    assert identity.list_logical() == []

    monkeypatch.setattr(pki, "issue_from_csr", issue)
    result = service.provision(request)  # the same token: it was never burnt
    assert result.status is RegistrationStatus.ASSIGNED
    assert result.logical_name == "line-03-left-welding-01"
    assert identity.get_physical(pid).state is DeviceState.PROVISIONED

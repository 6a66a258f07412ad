"""The policy's `allowed_networks` as the check provisioning and EST re-enrollment make once
a unit is proven (`provisioning.SourceCheckFor`).

    ProvisioningService(..., source_check=SourceNetworks(platform.policy))

Provisioning sits below this package, so it receives this object from the composition root
instead of importing the policy. Fails closed: a source that is not an IP address is refused
unless the policy admits every address; a unit the registry does not know is judged by the
baseline.
"""

from __future__ import annotations

from devicetrust.domain.errors import NotFound
from devicetrust.domain.ids import PhysicalId
from devicetrust.policy.evaluation import source_allowed
from devicetrust.policy.model import SecurityPolicy
from devicetrust.policy.service import PolicyService

__all__ = ["SourceNetworks"]


class SourceNetworks:
    """A `SourceCheckFor` backed by the policy service (resolved on every call)."""

    def __init__(self, policy: PolicyService) -> None:
        self._policy = policy

    def __call__(self, physical_id: PhysicalId, enrollment: str | None, source: str) -> bool:
        policy: SecurityPolicy
        try:
            policy = self._policy.effective(physical_id, enrollment=enrollment).policy
        except NotFound:
            policy = self._policy.baseline
        if {(n.version, n.prefixlen) for n in policy.allowed_networks} >= {(4, 0), (6, 0)}:
            return True  # every address: whatever the entry point calls its peer
        return source_allowed(policy, source).allowed

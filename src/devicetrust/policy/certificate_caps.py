"""The policy's `max_certificate_lifetime` as the cap provisioning and EST re-enrollment
put on a unit's operational certificate.

    caps = CertificateLifetimeCaps(platform.policy)
    ProvisioningService(..., lifetime_cap=caps)
    CertificateReenrollment(..., lifetime_cap=caps)

Provisioning sits below this package, so it receives this object (a
`provisioning.LifetimeCapFor`) from the composition root instead of importing the policy.
Resolved on every call (an issuance is rare; a relaxation or a tightening applies at once).
Never raises the cap above the policy: a unit the registry does not know gets the baseline.
"""

from __future__ import annotations

from devicetrust.domain.errors import NotFound
from devicetrust.domain.ids import PhysicalId
from devicetrust.policy.model import PolicyField
from devicetrust.policy.resolution import BASELINE_SOURCE
from devicetrust.policy.service import PolicyService
from devicetrust.provisioning.assignment import LifetimeCap

__all__ = ["CertificateLifetimeCaps"]


class CertificateLifetimeCaps:
    """A `LifetimeCapFor` backed by the policy service."""

    def __init__(self, policy: PolicyService) -> None:
        self._policy = policy

    def __call__(self, physical_id: PhysicalId, enrollment: str | None) -> LifetimeCap:
        try:
            effective = self._policy.effective(physical_id, enrollment=enrollment)
        except NotFound:
            baseline = self._policy.baseline
            return LifetimeCap(baseline.max_certificate_lifetime, BASELINE_SOURCE)
        return LifetimeCap(
            effective.policy.max_certificate_lifetime,
            effective.sources[PolicyField.MAX_CERTIFICATE_LIFETIME],
        )

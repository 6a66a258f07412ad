"""The unit's security policy on the key it asks to have certified and on its boot state:
the check provisioning and EST re-enrollment make once a unit is proven, before anything is
written.

The policy lives in a layer above this one, so the check is passed in as an `AdmissionFor`
(the composition root gives `policy.KeyAdmission`). It refuses with a `policy.*` code:
a key algorithm or size the policy forbids, a key not attested in a TPM/HSM while
`hardware_key_required` holds, and no good boot while `measured_boot_required` holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from devicetrust.domain.ids import PhysicalId
from devicetrust.pki.csr import DeviceKey


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    """`hardware_attested`: this request proved the key lives in the unit's TPM (TPM2_Certify
    by an AK bound to the enrolled EK). `boot_pcrs`: the PCR values a verified TPM quote of
    this request proved (None: no quote). `entry_point`: `provisioning` or `est`."""

    physical_id: PhysicalId
    enrollment: str | None
    public_key: DeviceKey
    hardware_attested: bool
    boot_pcrs: Mapping[int, bytes] | None
    entry_point: str
    boot_ak: bytes | None = None  # the attestation key that signed the quote


class AdmissionFor(Protocol):
    """Raises a `policy.*` refusal (403) when the unit's policy does not admit the request."""

    def __call__(self, request: AdmissionRequest) -> None: ...

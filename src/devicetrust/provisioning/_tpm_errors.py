"""Failures of the TPM 2.0 method that `provisioning.errors` does not already name.

    DeviceTrustError
    +-- InvalidInput
    |   +-- EndorsementKeyRefused   provisioning.tpm_ek_refused    factory registration: the EK
    |                                                              or its certificate is not usable
    +-- Unauthorized
    |   +-- AttestationFailed
    |       +-- EndorsementKeyUntrusted                            attestation: the EK policy
    |               provisioning.tpm_ek_untrusted                  refuses the enrolled EK
    |               provisioning.tpm_ek_certificate_required       certificate, or its absence
    +-- ConfigurationError
        +-- TpmSupportMissing       provisioning.tpm_unavailable   the `tpm` extra (tpm2-pytss,
                                                                   libtss2) is not installed

Other refusals of a device's evidence are `AttestationFailed(RefusalReason.TPM_REFUSED)` or
`MalformedEvidence` (`provisioning.errors`). Never carries a secret, a credential or a nonce.
"""

from __future__ import annotations

from typing import Any

from devicetrust.domain.errors import ConfigurationError, InvalidInput, Unauthorized
from devicetrust.provisioning.errors import AttestationFailed, RefusalReason


class EndorsementKeyRefused(InvalidInput):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("provisioning.tpm_ek_refused", message, **details)


class TpmSupportMissing(ConfigurationError):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("provisioning.tpm_unavailable", message, **details)


class EndorsementKeyUntrusted(AttestationFailed):
    """An `AttestationFailed` of the TPM method (`reason` TPM_REFUSED) whose code says
    precisely which EK policy check refused (`_tpm_ek_policy`)."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        Unauthorized.__init__(self, code, message, **details)
        self.reason = RefusalReason.TPM_REFUSED

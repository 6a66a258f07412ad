"""Failures of the TPM 2.0 method that `provisioning.errors` does not already name.

    DeviceTrustError
    +-- InvalidInput
    |   +-- EndorsementKeyRefused   provisioning.tpm_ek_refused    factory registration: the EK
    |                                                              or its certificate is not usable
    +-- ConfigurationError
        +-- TpmSupportMissing       provisioning.tpm_unavailable   the `tpm` extra (tpm2-pytss,
                                                                   libtss2) is not installed

Refusals of a device's evidence are `AttestationFailed(RefusalReason.TPM_REFUSED)` or
`MalformedEvidence` (`provisioning.errors`). Never carries a secret, a credential or a nonce.
"""

from __future__ import annotations

from typing import Any

from devicetrust.domain.errors import ConfigurationError, InvalidInput


class EndorsementKeyRefused(InvalidInput):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("provisioning.tpm_ek_refused", message, **details)


class TpmSupportMissing(ConfigurationError):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("provisioning.tpm_unavailable", message, **details)

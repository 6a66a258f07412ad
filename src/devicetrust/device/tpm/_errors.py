"""Failures of the device's TPM keystore, each with one stable code.

    DeviceTrustError
    +-- TpmUnavailable          device.tpm_unavailable        no tpm2-pytss/libtss2, or the
    |                                                         TCTI cannot reach a TPM
    +-- TpmOperationFailed      device.tpm_failed             a TPM command failed
        +-- ActivationFailed    device.tpm_activation_failed  TPM2_ActivateCredential refused the
        |                                                     credential (not for this EK or AK)
        +-- UnsealFailed        device.tpm_unseal_failed      a sealed object does not open: not
                                                              this TPM, or its PCRs have changed

Carries the TSS response code in `details["rc"]`, never a secret or a key blob.
"""

from __future__ import annotations

from typing import Any, ClassVar

from devicetrust.domain.errors import DeviceTrustError


class TpmUnavailable(DeviceTrustError):
    CODE: ClassVar[str] = "device.tpm_unavailable"
    exit_code = 8

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class TpmOperationFailed(DeviceTrustError):
    CODE: ClassVar[str] = "device.tpm_failed"
    exit_code = 8

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class ActivationFailed(TpmOperationFailed):
    CODE: ClassVar[str] = "device.tpm_activation_failed"


class UnsealFailed(TpmOperationFailed):
    CODE: ClassVar[str] = "device.tpm_unseal_failed"

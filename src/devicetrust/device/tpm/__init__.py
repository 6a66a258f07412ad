"""TPM 2.0 keystore of the device SDK: the endorsement key for factory registration, the
attestation key and credential activation for provisioning, and a non-exportable operational
key with its certification and CSR.

    with TpmKeystore("device:/dev/tpmrm0") as tpm:
        ek = tpm.endorsement_key()                      # factory: register ek.public/.certificate
        request = challenge_request(tpm)                 # -> server: new TPM challenge
        key = tpm.create_key()                           # store key.public / key.private
        evidence = answer_challenge(tpm, key, challenge_id, challenge)
        csr = tpm.create_csr(key, subject)               # -> server: evidence + CSR
        answer_boot_challenge(tpm, boot_challenge)       # later: re-attest the boot PCRs

Needs the `tpm` extra (tpm2-pytss, libtss2). Imports no server module.
"""

from devicetrust.device.tpm._errors import ActivationFailed, TpmOperationFailed, TpmUnavailable
from devicetrust.device.tpm._evidence import (
    answer_boot_challenge,
    answer_challenge,
    challenge_request,
)
from devicetrust.device.tpm._keystore import (
    Certification,
    EndorsementKeyInfo,
    Quote,
    TpmKey,
    TpmKeystore,
)
from devicetrust.device.tpm._swtpm import Swtpm
from devicetrust.device.tpm._templates import EndorsementKeyType

__all__ = [
    "ActivationFailed",
    "Certification",
    "EndorsementKeyInfo",
    "EndorsementKeyType",
    "Quote",
    "Swtpm",
    "TpmKey",
    "TpmKeystore",
    "TpmOperationFailed",
    "TpmUnavailable",
    "answer_boot_challenge",
    "answer_challenge",
    "challenge_request",
]

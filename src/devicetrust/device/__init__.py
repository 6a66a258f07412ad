"""The device SDK: what runs on a device or gateway to obtain and use its identity.

Talks to the server only over network protocols and imports no server module (nothing from
`provisioning`, `pki`, `store`, `api`, ...), so a device needs none of the server's
dependencies. Keys live in a keystore chosen by URI (`device.keystore`: `file:`, `tpm2:`,
`pkcs11:`); the TPM 2.0 primitives for attestation are in `device.tpm`.
"""

from devicetrust.device.keystore import (
    DeviceKey,
    KeyExists,
    KeyNotFound,
    Keystore,
    KeystoreError,
    TlsKeyUnsupported,
    open_keystore,
    sign_jwt,
)

__all__ = [
    "DeviceKey",
    "KeyExists",
    "KeyNotFound",
    "Keystore",
    "KeystoreError",
    "TlsKeyUnsupported",
    "open_keystore",
    "sign_jwt",
]

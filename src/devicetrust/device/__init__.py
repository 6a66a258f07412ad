"""The device SDK: what runs on a device or gateway to obtain and use its identity.

Talks to the server only over network protocols and imports no server module (nothing from
`provisioning`, `pki`, `store`, `api`, ...), so a device needs none of the server's
dependencies. `device.client` provisions a unit, keeps its connection to the data plane,
renews its certificate and buffers what it cannot send yet. Keys live in a keystore chosen
by URI (`device.keystore`: `file:`, `tpm2:`, `pkcs11:`); the TPM 2.0 primitives for
attestation are in `device.tpm`.
"""

from devicetrust.device.client import (
    AsyncDeviceClient,
    DeviceClient,
    DeviceClientError,
    DeviceState,
    SymmetricKeyAttestation,
    TpmAttestation,
    X509Attestation,
    provision,
)
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
    "AsyncDeviceClient",
    "DeviceClient",
    "DeviceClientError",
    "DeviceKey",
    "DeviceState",
    "KeyExists",
    "KeyNotFound",
    "Keystore",
    "KeystoreError",
    "SymmetricKeyAttestation",
    "TlsKeyUnsupported",
    "TpmAttestation",
    "X509Attestation",
    "open_keystore",
    "provision",
    "sign_jwt",
]

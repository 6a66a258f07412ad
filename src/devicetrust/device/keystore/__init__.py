"""Device keystores: a device's P-256 keys and small sealed secrets behind one interface,
chosen by URI (docs/device-keystores.md).

    with open_keystore("file:/var/lib/dt/keystore.json", secret=device_secret) as store:
        key = store.create_key("operational")
        csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(
            key.signer(), hashes.SHA256())
        token = sign_jwt(key, {"sub": physical_id, ...}, {"x5t#S256": thumbprint})

Backends: `file:` (AES-256-GCM encrypted file; store key from scrypt or sealed by a TPM),
`tpm2:` (keys created in the TPM, blobs in a directory), `pkcs11:` (keys generated on a
token); `memory:` (process memory only, never persisted: for simulators and tests). The
backend classes are exported for typing (`Tpm2Keystore.tpm` for TPM
attestation); open them with `open_keystore`. Imports no server module; the TPM and PKCS#11
libraries load only when a backend opens.
"""

from devicetrust.device.keystore._base import (
    DeviceKey,
    InvalidKeystoreUri,
    KeyExists,
    KeyNotFound,
    Keystore,
    KeystoreCorrupt,
    KeystoreError,
    KeystoreUnavailable,
    TlsKeyUnsupported,
    UnlockFailed,
)
from devicetrust.device.keystore._file import FileKeystore
from devicetrust.device.keystore._jwt import sign_jwt
from devicetrust.device.keystore._open import open_keystore
from devicetrust.device.keystore._pkcs11 import Pkcs11Keystore
from devicetrust.device.keystore._tpm2 import Tpm2Keystore

__all__ = [
    "DeviceKey",
    "FileKeystore",
    "InvalidKeystoreUri",
    "KeyExists",
    "KeyNotFound",
    "Keystore",
    "KeystoreCorrupt",
    "KeystoreError",
    "KeystoreUnavailable",
    "Pkcs11Keystore",
    "TlsKeyUnsupported",
    "Tpm2Keystore",
    "UnlockFailed",
    "open_keystore",
    "sign_jwt",
]

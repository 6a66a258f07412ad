"""CA key backends: CA private keys that are never stored in clear, behind one small
interface (`CaKey`), chosen by URI scheme.

    file:/srv/devicetrust/ca/root.key.pem       encrypted PKCS#8; password from a passphrase
                                                (scrypt) or the platform KEK
    pkcs11:token=devicetrust;object=root-ca     generated and kept inside a PKCS#11 token

    key = generate_key("file:/srv/ca/root.key.pem", KeyAlgorithm.ECDSA_P256,
                       password=PassphrasePassword(passphrase))
    with Pkcs11Connection(Pkcs11Config(Path(module), PinFromEnv("DEVICETRUST_HSM_PIN"))) as hsm:
        key = open_key("pkcs11:token=devicetrust;object=root-ca", pkcs11=hsm)
        certificate = key.sign_certificate(builder)

This package never writes a private key, passphrase, KEK or PIN in clear, never logs one, and
never gives a private key object to its callers.
"""

from devicetrust.pki.keys._algorithm import CaPrivateKey, CaPublicKey, KeyAlgorithm
from devicetrust.pki.keys._ca_key import CaKey
from devicetrust.pki.keys._dispatch import (
    generate_key,
    import_key,
    key_uri_scheme,
    open_key,
)
from devicetrust.pki.keys._errors import (
    HsmFailure,
    InvalidKeyUri,
    KeyClosed,
    KeyExists,
    KeyFileInvalid,
    KeyNotFound,
    KeyNotProtected,
    KeySecretMissing,
    KeyUnlockFailed,
    SignatureInvalid,
    UnsupportedKeyAlgorithm,
    UnsupportedKeyOperation,
    UnsupportedKeyScheme,
)
from devicetrust.pki.keys._password import KekPassword, KeyPassword, PassphrasePassword
from devicetrust.pki.keys._pkcs11_session import (
    PinFromEnv,
    PinFromFile,
    PinSource,
    PinValue,
    Pkcs11Config,
    Pkcs11Connection,
)
from devicetrust.pki.keys._signature import verify_signature

__all__ = [
    "CaKey",
    "CaPrivateKey",
    "CaPublicKey",
    "HsmFailure",
    "InvalidKeyUri",
    "KekPassword",
    "KeyAlgorithm",
    "KeyClosed",
    "KeyExists",
    "KeyFileInvalid",
    "KeyNotFound",
    "KeyNotProtected",
    "KeyPassword",
    "KeySecretMissing",
    "KeyUnlockFailed",
    "PassphrasePassword",
    "PinFromEnv",
    "PinFromFile",
    "PinSource",
    "PinValue",
    "Pkcs11Config",
    "Pkcs11Connection",
    "SignatureInvalid",
    "UnsupportedKeyAlgorithm",
    "UnsupportedKeyOperation",
    "UnsupportedKeyScheme",
    "generate_key",
    "import_key",
    "key_uri_scheme",
    "open_key",
    "verify_signature",
]

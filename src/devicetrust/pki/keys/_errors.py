"""Typed failures of the CA key backends, each with one stable code.

    DeviceTrustError
    +-- InvalidInput
    |   +-- InvalidKeyUri           pki.invalid_key_uri         malformed or forbidden URI part
    |   +-- UnsupportedKeyScheme    pki.unsupported_key_scheme  no backend for the URI scheme
    |   +-- UnsupportedKeyAlgorithm pki.unsupported_key_algorithm  not one of `KeyAlgorithm`
    |   +-- KeyNotProtected         pki.key_not_protected       clear key file, extractable HSM key
    |   +-- KeyFileInvalid          pki.key_file_invalid        damaged or foreign key file
    |   +-- SignatureInvalid        pki.signature_invalid       a signature does not verify
    +-- Unauthorized
    |   +-- KeyUnlockFailed         pki.key_unlock_failed       wrong passphrase, KEK or PIN
    +-- NotFound
    |   +-- KeyNotFound             pki.key_not_found           no such key file or token object
    +-- Conflict
    |   +-- KeyExists               pki.key_exists              generate would replace a key
    +-- ConfigurationError
        +-- KeySecretMissing        pki.key_secret_missing      no password source / HSM connection
        +-- KeyClosed               pki.key_closed              key or HSM session closed
        +-- UnsupportedKeyOperation pki.unsupported_key_operation  backend cannot do this
        +-- HsmFailure              pki.hsm_failed              the PKCS#11 module or token failed

Never puts a passphrase, PIN, KEK or key byte in a message or in `details`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from devicetrust.domain.errors import (
    ConfigurationError,
    Conflict,
    InvalidInput,
    NotFound,
    Unauthorized,
)


class InvalidKeyUri(InvalidInput):
    CODE: ClassVar[str] = "pki.invalid_key_uri"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class UnsupportedKeyScheme(InvalidInput):
    CODE: ClassVar[str] = "pki.unsupported_key_scheme"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class UnsupportedKeyAlgorithm(InvalidInput):
    CODE: ClassVar[str] = "pki.unsupported_key_algorithm"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class KeyNotProtected(InvalidInput):
    CODE: ClassVar[str] = "pki.key_not_protected"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class KeyFileInvalid(InvalidInput):
    CODE: ClassVar[str] = "pki.key_file_invalid"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class SignatureInvalid(InvalidInput):
    CODE: ClassVar[str] = "pki.signature_invalid"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class KeyUnlockFailed(Unauthorized):
    CODE: ClassVar[str] = "pki.key_unlock_failed"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class KeyNotFound(NotFound):
    CODE: ClassVar[str] = "pki.key_not_found"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class KeyExists(Conflict):
    CODE: ClassVar[str] = "pki.key_exists"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class KeySecretMissing(ConfigurationError):
    CODE: ClassVar[str] = "pki.key_secret_missing"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class KeyClosed(ConfigurationError):
    CODE: ClassVar[str] = "pki.key_closed"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class HsmFailure(ConfigurationError):
    CODE: ClassVar[str] = "pki.hsm_failed"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class UnsupportedKeyOperation(ConfigurationError):
    CODE: ClassVar[str] = "pki.unsupported_key_operation"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)

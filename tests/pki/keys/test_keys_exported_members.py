"""The public surface of `devicetrust.pki.keys` is exactly what `__all__` lists."""

from __future__ import annotations

import devicetrust.pki.keys as keys

EXPECTED = {
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
}


def test_all_is_the_public_surface() -> None:
    assert set(keys.__all__) == EXPECTED
    public = {name for name in vars(keys) if not name.startswith("_")}
    assert public == EXPECTED


def test_error_codes_are_stable_and_distinct() -> None:
    errors = [getattr(keys, name) for name in EXPECTED if name[0].isupper()]
    codes = {cls.CODE for cls in errors if hasattr(cls, "CODE")}
    assert codes == {
        "pki.hsm_failed",
        "pki.invalid_key_uri",
        "pki.key_closed",
        "pki.key_exists",
        "pki.key_file_invalid",
        "pki.key_not_found",
        "pki.key_not_protected",
        "pki.key_secret_missing",
        "pki.key_unlock_failed",
        "pki.signature_invalid",
        "pki.unsupported_key_algorithm",
        "pki.unsupported_key_operation",
        "pki.unsupported_key_scheme",
    }

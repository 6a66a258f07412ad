"""The public surface of `devicetrust.device.keystore` is exactly what `__all__` lists."""

from __future__ import annotations

import devicetrust.device.keystore as keystore

EXPECTED = {
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
}


def test_all_is_the_public_surface() -> None:
    assert set(keystore.__all__) == EXPECTED
    public = {name for name in vars(keystore) if not name.startswith("_")}
    assert public == EXPECTED


def test_error_codes_are_stable_and_distinct() -> None:
    errors = [getattr(keystore, name) for name in EXPECTED if name[0].isupper()]
    codes = {cls.code for cls in errors if isinstance(cls, type) and issubclass(cls, Exception)}
    assert codes == {
        "keystore.error",
        "keystore.invalid_uri",
        "keystore.key_exists",
        "keystore.key_not_found",
        "keystore.corrupt",
        "keystore.unavailable",
        "keystore.tls_unsupported",
        "keystore.unlock_failed",
    }


def test_the_backends_are_keystores() -> None:
    for backend in (keystore.FileKeystore, keystore.Pkcs11Keystore, keystore.Tpm2Keystore):
        for name in ("kind", "create_key", "key", "delete_key", "labels", "seal", "unseal"):
            assert hasattr(backend, name), (backend, name)


def test_importing_the_sdk_loads_no_hardware_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, devicetrust.device.keystore; "
        "print(any(m.split('.')[0] in ('tpm2_pytss', 'pkcs11') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

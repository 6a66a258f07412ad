"""Key URIs: the scheme picks the backend; malformed URIs and URIs carrying secrets are refused
before anything is opened, and a refused URI's secret never shows in the error."""

from __future__ import annotations

from pathlib import Path

import pytest

from devicetrust.pki.keys import (
    InvalidKeyUri,
    KeyAlgorithm,
    KeySecretMissing,
    PassphrasePassword,
    UnsupportedKeyAlgorithm,
    UnsupportedKeyScheme,
    generate_key,
    import_key,
    key_uri_scheme,
    open_key,
)
from devicetrust.pki.keys._file_backend import path_from_uri
from devicetrust.pki.keys._pkcs11_uri import Pkcs11Uri

SECRET_PIN = "s3cr3t-pin-4711"


@pytest.mark.parametrize(
    ("uri", "scheme"),
    [
        ("file:/srv/ca/root.pem", "file"),
        ("FILE:///srv/ca/root.pem", "file"),
        ("pkcs11:token=devicetrust;object=root-ca", "pkcs11"),
        ("tpm2:handle=0x81000001", "tpm2"),
    ],
)
def test_scheme(uri: str, scheme: str) -> None:
    assert key_uri_scheme(uri) == scheme


@pytest.mark.parametrize("uri", ["tpm2:handle=0x81000001", "awskms:alias/root", "https://x/k"])
def test_unknown_scheme_is_a_typed_error(uri: str) -> None:
    with pytest.raises(UnsupportedKeyScheme) as caught:
        open_key(uri)
    assert caught.value.code == "pki.unsupported_key_scheme"
    with pytest.raises(UnsupportedKeyScheme):
        generate_key(uri, KeyAlgorithm.ECDSA_P256)


@pytest.mark.parametrize("uri", ["", "root.pem", "/srv/ca/root.pem", "1file:/x"])
def test_uri_without_scheme_is_refused(uri: str) -> None:
    with pytest.raises(InvalidKeyUri):
        open_key(uri)


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("file:/srv/ca/root.pem", "/srv/ca/root.pem"),
        ("file:///srv/ca/root%20key.pem", "/srv/ca/root key.pem"),
        ("file://localhost/srv/ca/root.pem", "/srv/ca/root.pem"),
        ("file:ca/root.pem", "ca/root.pem"),
    ],
)
def test_file_uri_paths(uri: str, path: str) -> None:
    assert path_from_uri(uri) == Path(path)


@pytest.mark.parametrize(
    "uri",
    [
        "file://otherhost/srv/root.pem",
        "file:/srv/root.pem?password=x",
        "file:/srv/root.pem#k",
        "file:",
    ],
)
def test_bad_file_uris(uri: str) -> None:
    with pytest.raises(InvalidKeyUri):
        path_from_uri(uri)


def test_pkcs11_uri_round_trip() -> None:
    uri = Pkcs11Uri.parse("pkcs11:token=dev%20trust;object=root-ca;id=%01%ff;type=private")
    assert uri == Pkcs11Uri(token="dev trust", object="root-ca", id=b"\x01\xff")
    assert Pkcs11Uri.parse(str(uri)) == uri
    assert str(uri) == "pkcs11:token=dev%20trust;object=root-ca;id=%01%ff;type=private"


@pytest.mark.parametrize(
    "uri",
    [
        f"pkcs11:token=devicetrust;object=root-ca;pin-value={SECRET_PIN}",
        f"pkcs11:token=devicetrust;object=root-ca?pin-value={SECRET_PIN}",
        f"pkcs11:token=devicetrust;object=root-ca?pin-source=file:/{SECRET_PIN}",
        f"pkcs11:token=devicetrust;object=root-ca?module-path=/tmp/{SECRET_PIN}.so",
    ],
)
def test_pkcs11_uri_never_takes_pin_or_module(uri: str) -> None:
    with pytest.raises(InvalidKeyUri) as caught:
        open_key(uri)
    assert SECRET_PIN not in str(caught.value)
    assert SECRET_PIN not in repr(caught.value.details)


@pytest.mark.parametrize(
    "uri",
    [
        "pkcs11:object=root-ca",  # no token
        "pkcs11:token=devicetrust",  # no object
        "pkcs11:token=devicetrust;object=root-ca;type=public",
        "pkcs11:token=devicetrust;object=a;object=b",
        "pkcs11:token=devicetrust;object=root%zz",
        "pkcs11:token=devicetrust;object=root/ca",
        "pkcs11:token=devicetrust;object=" + "x" * 33,
        "pkcs11:token=devicetrust;object=%ff%fe",
        "pkcs11:token=devicetrust;object=root-ca;slot-id=3",
        "pkcs11:token=devicetrust;object=root-ca;id=",
    ],
)
def test_bad_pkcs11_uris(uri: str) -> None:
    with pytest.raises(InvalidKeyUri):
        Pkcs11Uri.parse(uri)


def test_backends_need_their_secret_source(tmp_path: Path) -> None:
    with pytest.raises(KeySecretMissing):
        generate_key((tmp_path / "k.pem").as_uri(), KeyAlgorithm.ECDSA_P256)
    assert not (tmp_path / "k.pem").exists()
    with pytest.raises(KeySecretMissing):
        generate_key("pkcs11:token=devicetrust;object=root-ca", KeyAlgorithm.ECDSA_P256)


def test_import_is_for_file_keys_only() -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    password = PassphrasePassword("correct horse battery staple", scrypt_n=2**14)
    with pytest.raises(UnsupportedKeyScheme):
        import_key(
            "pkcs11:token=devicetrust;object=x",
            ed25519.Ed25519PrivateKey.generate(),
            password=password,
        )


@pytest.mark.parametrize("name", ["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-3072"])
def test_algorithm_names(name: str) -> None:
    assert KeyAlgorithm.parse(name).value == name


@pytest.mark.parametrize("name", ["ecdsa-p521", "rsa-2048", "ECDSA-P256", ""])
def test_unknown_algorithm_names(name: str) -> None:
    with pytest.raises(UnsupportedKeyAlgorithm):
        KeyAlgorithm.parse(name)

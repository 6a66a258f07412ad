"""The keystore URI grammar: each scheme's parts, and refusals (fail closed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devicetrust.device.keystore import InvalidKeystoreUri, open_keystore
from devicetrust.device.keystore._uri import (
    FileUri,
    PinSource,
    Pkcs11Uri,
    Tpm2Uri,
    parse_keystore_uri,
)


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        ("file:/var/lib/dt/ks.json", FileUri(Path("/var/lib/dt/ks.json"))),
        ("file:///var/lib/dt/ks.json", FileUri(Path("/var/lib/dt/ks.json"))),
        ("file:state/ks.json", FileUri(Path("state/ks.json"))),
        (
            "file:/ks.json?tpm=swtpm:host=127.0.0.1,port=2321",
            FileUri(Path("/ks.json"), "swtpm:host=127.0.0.1,port=2321"),
        ),
        ("file:/my%20dir/ks.json", FileUri(Path("/my dir/ks.json"))),
        (
            "pkcs11:module=/usr/lib/softhsm/libsofthsm2.so;token=device",
            Pkcs11Uri(Path("/usr/lib/softhsm/libsofthsm2.so"), "device"),
        ),
        (
            "pkcs11:token=my%20token;module=/lib/p11.so?pin-source=env:DT_PIN",
            Pkcs11Uri(Path("/lib/p11.so"), "my token", PinSource("env", "DT_PIN")),
        ),
        (
            "pkcs11:module=/lib/p11.so;token=t?pin-source=file:/etc/dt/pin",
            Pkcs11Uri(Path("/lib/p11.so"), "t", PinSource("file", "/etc/dt/pin")),
        ),
        (
            "tpm2:swtpm:host=127.0.0.1,port=2321?dir=/var/lib/dt/tpm",
            Tpm2Uri("swtpm:host=127.0.0.1,port=2321", Path("/var/lib/dt/tpm")),
        ),
        (
            "tpm2:device:/dev/tpmrm0?dir=/var/lib/dt/tpm",
            Tpm2Uri("device:/dev/tpmrm0", Path("/var/lib/dt/tpm")),
        ),
    ],
)
def test_valid_uris(uri: str, parsed: object) -> None:
    assert parse_keystore_uri(uri) == parsed


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "file",
        "file:",
        "file://host/ks.json",
        "file:/ks.json?tpm=",
        "file:/ks.json?mode=0644",
        "file:/ks.json?tpm=a&tpm=b",
        "pkcs11:module=/lib/p11.so",
        "pkcs11:module=/lib/p11.so;token=t;pin-value=1234",
        "pkcs11:module=/lib/p11.so;token=t;token=u",
        "pkcs11:module=/lib/p11.so;token=t?pin-source=stdin",
        "pkcs11:module=/lib/p11.so;token=t?pin-value=1234",
        "tpm2:device:/dev/tpmrm0",
        "tpm2:?dir=/x",
        "tpm2:device:/dev/tpmrm0?dir=/x&owner=1",
        "s3:bucket/ks.json",
    ],
)
def test_invalid_uris_are_refused(uri: str) -> None:
    with pytest.raises(InvalidKeystoreUri):
        parse_keystore_uri(uri)


def test_a_pin_never_shows_in_the_error() -> None:
    with pytest.raises(InvalidKeystoreUri) as caught:
        open_keystore("pkcs11:module=/lib/p11.so;token=t;pin-value=s3cr3t-pin")
    assert "s3cr3t-pin" not in str(caught.value)

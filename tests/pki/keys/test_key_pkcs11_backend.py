"""The pkcs11: backend against SoftHSM2: keys are born in the token, stay there and sign."""

from __future__ import annotations

from pathlib import Path

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11_errors
from pkcs11.util.ec import encode_named_curve_parameters

from devicetrust.pki.keys import (
    KeyAlgorithm,
    KeyClosed,
    KeyExists,
    KeyNotFound,
    KeyNotProtected,
    KeySecretMissing,
    KeyUnlockFailed,
    PinFromEnv,
    PinFromFile,
    PinValue,
    Pkcs11Config,
    Pkcs11Connection,
    generate_key,
    open_key,
)
from tests.pki.keys.ca_structures import check_everything_verifies
from tests.pki.keys.conftest import SoftHsm


def _uri(softhsm: SoftHsm, label: str) -> str:
    return f"pkcs11:token={softhsm.token};object={label}"


def _raw_session(softhsm: SoftHsm) -> pkcs11.Session:
    token = pkcs11.lib(str(softhsm.module)).get_token(token_label=softhsm.token)
    return token.open(rw=True, user_pin=softhsm.pin)


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm), ids=lambda a: a.value)
def test_generate_in_token_sign_reopen(
    algorithm: KeyAlgorithm,
    softhsm: SoftHsm,
    hsm: Pkcs11Connection,
    object_label: str,
    tmp_path: Path,
) -> None:
    key = generate_key(_uri(softhsm, object_label), algorithm, pkcs11=hsm)
    assert key.algorithm is algorithm
    assert key.uri.startswith(f"pkcs11:token=devicetrust;object={object_label};id=%")
    check_everything_verifies(key, tmp_path)

    by_label = open_key(_uri(softhsm, object_label), pkcs11=hsm)
    assert by_label.public_key() == key.public_key()
    by_full_uri = open_key(key.uri, pkcs11=hsm)
    assert by_full_uri.public_key() == key.public_key()
    check_everything_verifies(by_label, tmp_path)


def test_token_key_is_sensitive_and_never_extractable(softhsm: SoftHsm, object_label: str) -> None:
    with Pkcs11Connection(softhsm.config()) as connection:
        generate_key(_uri(softhsm, object_label), KeyAlgorithm.ECDSA_P256, pkcs11=connection)
    with _raw_session(softhsm) as session:
        private = session.get_key(ObjectClass.PRIVATE_KEY, label=object_label)
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.EXTRACTABLE] is False
        assert private[Attribute.NEVER_EXTRACTABLE] is True
        assert private[Attribute.ALWAYS_SENSITIVE] is True
        assert private[Attribute.TOKEN] is True
        with pytest.raises(p11_errors.AttributeSensitive):
            private[Attribute.VALUE]


def test_extractable_token_key_is_refused(softhsm: SoftHsm, object_label: str) -> None:
    with _raw_session(softhsm) as session:
        session.generate_keypair(
            KeyType.EC,
            store=True,
            label=object_label,
            id=b"\x42" + object_label.encode(),
            capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
            public_template={Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
            private_template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
        )
    with Pkcs11Connection(softhsm.config()) as connection, pytest.raises(KeyNotProtected):
        open_key(_uri(softhsm, object_label), pkcs11=connection)


def test_generate_never_replaces_a_token_key(
    softhsm: SoftHsm, hsm: Pkcs11Connection, object_label: str
) -> None:
    key = generate_key(_uri(softhsm, object_label), pkcs11=hsm)
    with pytest.raises(KeyExists):
        generate_key(_uri(softhsm, object_label), KeyAlgorithm.ED25519, pkcs11=hsm)
    assert open_key(_uri(softhsm, object_label), pkcs11=hsm).public_key() == key.public_key()


def test_unknown_label_token_and_missing_connection(
    softhsm: SoftHsm, hsm: Pkcs11Connection
) -> None:
    with pytest.raises(KeyNotFound):
        open_key(_uri(softhsm, "no-such-key"), pkcs11=hsm)
    with pytest.raises(KeyNotFound):
        open_key("pkcs11:token=no-such-token;object=root-ca", pkcs11=hsm)
    with pytest.raises(KeySecretMissing):
        open_key(_uri(softhsm, "root-ca"))


def test_wrong_pin_is_an_unlock_failure(softhsm: SoftHsm) -> None:
    wrong = Pkcs11Config(module=softhsm.module, pin=PinValue("0000" + softhsm.pin))
    with Pkcs11Connection(wrong) as connection, pytest.raises(KeyUnlockFailed) as caught:
        open_key(_uri(softhsm, "root-ca"), pkcs11=connection)
    assert softhsm.pin not in str(caught.value)
    assert softhsm.pin not in repr(caught.value.details)


def test_pin_sources(softhsm: SoftHsm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVICETRUST_TEST_HSM_PIN", softhsm.pin)
    pin_file = tmp_path / "pin"
    pin_file.write_text(softhsm.pin + "\n")
    pin_file.chmod(0o600)
    for source in (PinFromEnv("DEVICETRUST_TEST_HSM_PIN"), PinFromFile(pin_file)):
        config = Pkcs11Config(module=softhsm.module, pin=source)
        with Pkcs11Connection(config) as connection:
            key = generate_key(
                _uri(softhsm, f"pin-{type(source).__name__}"[:32]), pkcs11=connection
            )
            assert key.sign_bytes(b"x")
            assert softhsm.pin not in repr(connection) and softhsm.pin not in repr(config)
    pin_file.chmod(0o644)
    with pytest.raises(KeyNotProtected):
        PinFromFile(pin_file).read_pin()
    with pytest.raises(KeySecretMissing):
        PinFromEnv("DEVICETRUST_TEST_UNSET_PIN_VARIABLE").read_pin()


def test_closed_connection_stops_its_keys(softhsm: SoftHsm, object_label: str) -> None:
    connection = Pkcs11Connection(softhsm.config())
    key = generate_key(_uri(softhsm, object_label), pkcs11=connection)
    connection.close()
    with pytest.raises(KeyClosed):
        key.sign_bytes(b"after close")
    with pytest.raises(KeyClosed):
        open_key(key.uri, pkcs11=connection)


def test_missing_module_is_a_typed_error(tmp_path: Path) -> None:
    config = Pkcs11Config(module=tmp_path / "libnothing.so", pin=PinValue("1234"))
    with pytest.raises(Exception, match="module") as caught:
        Pkcs11Connection(config)
    assert getattr(caught.value, "code", None) == "pki.hsm_failed"

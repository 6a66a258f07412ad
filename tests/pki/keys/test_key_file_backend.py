"""The file: backend: keys exist on disk only encrypted, open only with the right secret."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from devicetrust.pki.keys import (
    KekPassword,
    KeyAlgorithm,
    KeyExists,
    KeyFileInvalid,
    KeyNotFound,
    KeyNotProtected,
    KeySecretMissing,
    KeyUnlockFailed,
    PassphrasePassword,
    UnsupportedKeyAlgorithm,
    generate_key,
    import_key,
    open_key,
)
from devicetrust.vault import Vault
from tests.pki.keys.ca_structures import check_everything_verifies

PASSPHRASE = "correct horse battery staple"
FAST_SCRYPT = 2**14  # the floor; keeps the suite quick (production default is 2**17)
CLEAR_HEADERS = (b"BEGIN PRIVATE KEY", b"BEGIN EC PRIVATE KEY", b"BEGIN RSA PRIVATE KEY")


@pytest.fixture
def passphrase() -> PassphrasePassword:
    return PassphrasePassword(PASSPHRASE, scrypt_n=FAST_SCRYPT)


@pytest.fixture
def vault() -> Vault:
    return Vault.from_key(os.urandom(32))


def _uri(path: Path) -> str:
    return path.as_uri()


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm), ids=lambda a: a.value)
@pytest.mark.parametrize("source", ["passphrase", "kek"])
def test_generate_sign_reopen(
    algorithm: KeyAlgorithm,
    source: str,
    tmp_path: Path,
    passphrase: PassphrasePassword,
    vault: Vault,
) -> None:
    password = passphrase if source == "passphrase" else KekPassword(vault)
    path = tmp_path / "ca" / "root.key.pem"
    key = generate_key(_uri(path), algorithm, password=password)
    assert key.algorithm is algorithm
    check_everything_verifies(key, tmp_path)

    # On disk: encrypted PKCS#8, owner-only, and useless without the password.
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert not any(header in pem for header in CLEAR_HEADERS)
    for written in (path, path.with_name(path.name + ".protection.json")):
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
    with pytest.raises(TypeError, match="encrypted"):
        serialization.load_pem_private_key(pem, password=None)

    reopened = open_key(key.uri, password=password)
    assert reopened.public_key() == key.public_key()
    check_everything_verifies(reopened, tmp_path)
    key.close()
    reopened.close()


def test_wrong_passphrase_is_a_typed_error(tmp_path: Path, passphrase: PassphrasePassword) -> None:
    key = generate_key(_uri(tmp_path / "k.pem"), password=passphrase)
    wrong = PassphrasePassword("correct horse battery stapler", scrypt_n=FAST_SCRYPT)
    with pytest.raises(KeyUnlockFailed) as caught:
        open_key(key.uri, password=wrong)
    assert caught.value.code == "pki.key_unlock_failed"
    assert PASSPHRASE not in str(caught.value) and PASSPHRASE not in repr(caught.value.details)


def test_wrong_kek_and_wrong_source_are_unlock_failures(
    tmp_path: Path, passphrase: PassphrasePassword, vault: Vault
) -> None:
    sealed = generate_key(_uri(tmp_path / "kek.pem"), password=KekPassword(vault))
    with pytest.raises(KeyUnlockFailed):
        open_key(sealed.uri, password=KekPassword(Vault.from_key(os.urandom(32))))
    with pytest.raises(KeyUnlockFailed):
        open_key(sealed.uri, password=passphrase)
    stretched = generate_key(_uri(tmp_path / "pass.pem"), password=passphrase)
    with pytest.raises(KeyUnlockFailed):
        open_key(stretched.uri, password=KekPassword(vault))


@pytest.mark.parametrize("encoding", ["pkcs8", "traditional"])
def test_clear_key_file_is_refused(
    tmp_path: Path, passphrase: PassphrasePassword, encoding: str
) -> None:
    path = tmp_path / "clear.pem"
    form = {
        "pkcs8": serialization.PrivateFormat.PKCS8,
        "traditional": serialization.PrivateFormat.TraditionalOpenSSL,
    }[encoding]
    path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, form, serialization.NoEncryption()
        )
    )
    with pytest.raises(KeyNotProtected) as caught:
        open_key(_uri(path), password=passphrase)
    assert caught.value.code == "pki.key_not_protected"


def test_legacy_pem_encryption_is_refused(tmp_path: Path, passphrase: PassphrasePassword) -> None:
    path = tmp_path / "legacy.pem"
    path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(b"legacy-password"),
        )
    )
    with pytest.raises(KeyFileInvalid):
        open_key(_uri(path), password=passphrase)


def test_generate_never_replaces_a_key(tmp_path: Path, passphrase: PassphrasePassword) -> None:
    key = generate_key(_uri(tmp_path / "root.pem"), password=passphrase)
    before = (tmp_path / "root.pem").read_bytes()
    with pytest.raises(KeyExists):
        generate_key(key.uri, KeyAlgorithm.ED25519, password=passphrase)
    assert (tmp_path / "root.pem").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root.pem", "root.pem.protection.json"]


def test_missing_file_record_or_password(tmp_path: Path, passphrase: PassphrasePassword) -> None:
    with pytest.raises(KeyNotFound):
        open_key(_uri(tmp_path / "absent.pem"), password=passphrase)
    key = generate_key(_uri(tmp_path / "k.pem"), password=passphrase)
    with pytest.raises(KeySecretMissing):
        open_key(key.uri)
    (tmp_path / "k.pem.protection.json").unlink()
    with pytest.raises(KeyFileInvalid):
        open_key(key.uri, password=passphrase)


def test_record_must_match_the_key(tmp_path: Path, passphrase: PassphrasePassword) -> None:
    """A record naming another public key (or another algorithm) does not pass."""
    key = generate_key(_uri(tmp_path / "a.pem"), password=passphrase)
    record = tmp_path / "a.pem.protection.json"
    original = record.read_bytes()
    digest = json.loads(original)["public_key_sha256"]
    record.write_bytes(original.replace(digest.encode(), b"0" * 64))
    with pytest.raises(KeyFileInvalid):
        open_key(key.uri, password=passphrase)
    record.write_bytes(original.replace(b'"ecdsa-p256"', b'"ecdsa-p384"'))
    with pytest.raises(KeyFileInvalid):
        open_key(key.uri, password=passphrase)
    record.write_bytes(original)
    assert open_key(key.uri, password=passphrase).public_key() == key.public_key()


def test_swapped_records_do_not_open(tmp_path: Path, passphrase: PassphrasePassword) -> None:
    a = generate_key(_uri(tmp_path / "a.pem"), password=passphrase)
    generate_key(_uri(tmp_path / "b.pem"), password=passphrase)
    (tmp_path / "a.pem.protection.json").write_bytes(
        (tmp_path / "b.pem.protection.json").read_bytes()
    )
    with pytest.raises(KeyUnlockFailed):
        open_key(a.uri, password=passphrase)


@pytest.mark.parametrize(
    "record",
    [
        b"not json",
        b"{}",
        b'{"format": "other"}',
    ],
)
def test_damaged_record_is_refused(
    tmp_path: Path, passphrase: PassphrasePassword, record: bytes
) -> None:
    key = generate_key(_uri(tmp_path / "k.pem"), password=passphrase)
    (tmp_path / "k.pem.protection.json").write_bytes(record)
    with pytest.raises(KeyFileInvalid):
        open_key(key.uri, password=passphrase)


def test_weakened_scrypt_cost_is_refused(tmp_path: Path, passphrase: PassphrasePassword) -> None:
    key = generate_key(_uri(tmp_path / "k.pem"), password=passphrase)
    record = tmp_path / "k.pem.protection.json"
    record.write_bytes(record.read_bytes().replace(b'"scrypt_n": 16384', b'"scrypt_n": 1024'))
    with pytest.raises(KeyFileInvalid):
        open_key(key.uri, password=passphrase)


def test_import_external_key_and_refuse_weak_ones(
    tmp_path: Path, passphrase: PassphrasePassword
) -> None:
    external = ec.generate_private_key(ec.SECP384R1())
    key = import_key(_uri(tmp_path / "ext.pem"), external, password=passphrase)
    assert key.algorithm is KeyAlgorithm.ECDSA_P384
    assert open_key(key.uri, password=passphrase).public_key() == external.public_key()
    with pytest.raises(UnsupportedKeyAlgorithm):
        import_key(
            _uri(tmp_path / "p521.pem"),
            ec.generate_private_key(ec.SECP521R1()),
            password=passphrase,
        )
    assert not (tmp_path / "p521.pem").exists()


def test_closed_key_and_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    source = PassphrasePassword(PASSPHRASE, scrypt_n=FAST_SCRYPT)
    key = generate_key(_uri(tmp_path / "k.pem"), password=source)
    assert PASSPHRASE not in repr(source)
    key.close()
    with pytest.raises(Exception, match="closed") as caught:
        key.sign_bytes(b"x")
    assert getattr(caught.value, "code", None) == "pki.key_closed"
    source.close()
    with pytest.raises(Exception, match="closed"):
        open_key(key.uri, password=source)


def test_short_passphrase_is_refused() -> None:
    with pytest.raises(Exception, match="characters") as caught:
        PassphrasePassword("short")
    assert getattr(caught.value, "code", None) == "config.invalid_passphrase"


def test_sealed_password_is_bound_to_its_key(tmp_path: Path, vault: Vault) -> None:
    """A KEK-sealed password spliced into another key's record does not open (AAD binding)."""
    source = KekPassword(vault)
    a = generate_key(_uri(tmp_path / "a.pem"), password=source)
    generate_key(_uri(tmp_path / "b.pem"), password=source)
    record_a = tmp_path / "a.pem.protection.json"
    document = json.loads(record_a.read_bytes())
    other = json.loads((tmp_path / "b.pem.protection.json").read_bytes())
    document["password"]["sealed"] = other["password"]["sealed"]
    record_a.write_text(json.dumps(document))
    with pytest.raises(KeyUnlockFailed):
        open_key(a.uri, password=source)

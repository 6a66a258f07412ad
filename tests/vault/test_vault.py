"""The vault: sealed secrets open only with the same key and record, and any change is caught."""

from __future__ import annotations

import base64
import copy
import os
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devicetrust.domain.errors import ConfigurationError
from devicetrust.vault import KEK_SIZE, OVERHEAD, Vault, generate_kek_text

AAD = b"webhook-secret:0b7a52a4-93c3-4f5c-9d5e-0d2c6a1f8e11"
SECRET = b"whsec_do-not-store-me-in-clear"


@pytest.fixture
def vault() -> Vault:
    return Vault.from_key(os.urandom(KEK_SIZE))


def test_seal_open_round_trip_in_a_bytearray(vault: Vault) -> None:
    sealed = vault.seal(SECRET, aad=AAD)
    assert SECRET not in sealed
    assert len(sealed) == len(SECRET) + OVERHEAD
    opened = vault.open(sealed, aad=AAD)
    assert isinstance(opened, bytearray)
    assert opened == SECRET


def test_each_seal_uses_fresh_randomness(vault: Vault) -> None:
    first, second = vault.seal(SECRET, aad=AAD), vault.seal(SECRET, aad=AAD)
    assert first != second
    assert first[5:17] != second[5:17]  # wrap nonces differ
    assert vault.open(first, aad=AAD) == vault.open(second, aad=AAD) == SECRET


def test_empty_plaintext_round_trips(vault: Vault) -> None:
    assert vault.open(vault.seal(b"", aad=AAD), aad=AAD) == b""


# Offsets of each field of the version-1 layout (see vault/_format.py).
FIELDS = {
    "version": 0,
    "key-id": 2,
    "wrap-nonce": 9,
    "wrapped-key": 30,
    "wrapped-key-tag": 60,
    "data-nonce": 70,
    "ciphertext": 80,
    "tag": -1,
}


@pytest.mark.parametrize("offset", FIELDS.values(), ids=FIELDS.keys())
def test_a_flipped_bit_anywhere_refuses_to_open(vault: Vault, offset: int) -> None:
    sealed = bytearray(vault.seal(SECRET, aad=AAD))
    sealed[offset] ^= 0x01
    with pytest.raises(ConfigurationError) as err:
        vault.open(bytes(sealed), aad=AAD)
    assert err.value.code == "vault.unseal_failed"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b[:-1],
        lambda b: b[: OVERHEAD - 1],
        lambda b: b"",
        lambda b: b + b"\x00",
    ],
    ids=["one-byte-short", "shorter-than-overhead", "empty", "one-byte-long"],
)
def test_truncated_or_extended_records_refuse_to_open(vault: Vault, mangle: object) -> None:
    sealed = vault.seal(SECRET, aad=AAD)
    assert callable(mangle)
    with pytest.raises(ConfigurationError) as err:
        vault.open(mangle(sealed), aad=AAD)
    assert err.value.code == "vault.unseal_failed"


def test_other_aad_or_other_key_refuses_to_open(vault: Vault) -> None:
    sealed = vault.seal(SECRET, aad=AAD)
    with pytest.raises(ConfigurationError) as err:
        vault.open(sealed, aad=AAD + b"x")
    assert err.value.code == "vault.unseal_failed"
    with pytest.raises(ConfigurationError) as err:
        Vault.from_key(os.urandom(KEK_SIZE)).open(sealed, aad=AAD)
    assert err.value.code == "vault.unseal_failed"
    assert "another key-encryption key" in err.value.message


def test_spliced_wrapped_key_from_another_record_refuses_to_open(vault: Vault) -> None:
    one, two = vault.seal(SECRET, aad=AAD), vault.seal(SECRET, aad=AAD)
    spliced = two[:65] + one[65:]  # record two's wrapped key, record one's payload
    with pytest.raises(ConfigurationError) as err:
        vault.open(spliced, aad=AAD)
    assert err.value.code == "vault.unseal_failed"


def test_empty_aad_is_refused(vault: Vault) -> None:
    with pytest.raises(TypeError):
        vault.seal(SECRET, aad=b"")


def test_close_zeroes_the_key_and_refuses_work() -> None:
    kek = bytearray(os.urandom(KEK_SIZE))
    vault = Vault(kek)
    sealed = vault.seal(SECRET, aad=AAD)
    vault.close()
    assert kek == bytearray(KEK_SIZE)
    assert vault.closed
    for call in (lambda: vault.seal(SECRET, aad=AAD), lambda: vault.open(sealed, aad=AAD)):
        with pytest.raises(ConfigurationError) as err:
            call()
        assert err.value.code == "vault.closed"


def test_key_never_shows_in_repr_or_pickle() -> None:
    key = os.urandom(KEK_SIZE)
    vault = Vault.from_key(key)
    assert key.hex() not in repr(vault)
    assert vault.key_id in repr(vault)
    with pytest.raises(TypeError):
        pickle.dumps(vault)
    with pytest.raises(TypeError):
        copy.copy(vault)


def test_encoded_kek_round_trips_and_is_canonical() -> None:
    text = generate_kek_text()
    assert len(text) == 43 and "=" not in text
    assert text != generate_kek_text()
    key = base64.urlsafe_b64decode(text + "=")
    sealed = Vault.from_key(key).seal(SECRET, aad=AAD)
    assert Vault.from_encoded(text).open(sealed, aad=AAD) == SECRET
    assert Vault.from_encoded(f"  {text}=\n").open(sealed, aad=AAD) == SECRET


def _non_canonical() -> str:
    text = generate_kek_text()
    # The last character carries two spare bits; set one of them.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(text[-1])
    return text[:-1] + alphabet[last | 1 if last % 4 == 0 else last & ~3]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a key",
        base64.urlsafe_b64encode(os.urandom(16)).decode(),
        base64.urlsafe_b64encode(os.urandom(33)).decode(),
        base64.b64encode(b"\xfb" * 32).decode(),  # standard alphabet (+ and /)
        "A" * 42 + " " + "A",
        "A" * 43 + "==",
        _non_canonical(),
    ],
    ids=["empty", "words", "16-bytes", "33-bytes", "std-alphabet", "space", "double-pad", "bits"],
)
def test_bad_kek_text_is_a_clear_configuration_error(text: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        Vault.from_encoded(text)
    assert err.value.code == "config.invalid_kek"
    if len(text) > 8:
        assert text.strip() not in str(err.value)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_raw_key_of_wrong_size_is_refused(size: int) -> None:
    with pytest.raises(ConfigurationError) as err:
        Vault.from_key(os.urandom(size))
    assert err.value.code == "config.invalid_kek"


def test_passphrase_derivation_is_stable_per_salt() -> None:
    salt, other_salt = os.urandom(16), os.urandom(16)
    sealed = Vault.from_passphrase("correct horse battery staple", salt).seal(SECRET, aad=AAD)
    again = Vault.from_passphrase("correct horse battery staple", salt)
    assert again.open(sealed, aad=AAD) == SECRET
    with pytest.raises(ConfigurationError):
        Vault.from_passphrase("correct horse battery staple", other_salt).open(sealed, aad=AAD)
    # NFC normalisation: composed and decomposed spellings derive the same key.
    composed = Vault.from_passphrase("caf\u00e9 on line three", salt)
    decomposed = Vault.from_passphrase("cafe\u0301 on line three", salt)
    assert composed.key_id == decomposed.key_id


@pytest.mark.parametrize(
    ("passphrase", "salt", "code"),
    [
        ("short", b"s" * 16, "config.invalid_passphrase"),
        ("long enough passphrase", b"s" * 15, "config.invalid_salt"),
    ],
)
def test_weak_passphrase_inputs_are_refused(passphrase: str, salt: bytes, code: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        Vault.from_passphrase(passphrase, salt)
    assert err.value.code == code


@settings(max_examples=50)
@given(plaintext=st.binary(max_size=2048), aad=st.binary(min_size=1, max_size=128))
def test_round_trip_property(plaintext: bytes, aad: bytes) -> None:
    vault = Vault.from_key(b"\x07" * KEK_SIZE)
    sealed = vault.seal(bytearray(plaintext), aad=aad)
    assert vault.open(sealed, aad=aad) == plaintext


def test_lazy_vault_loads_only_when_a_secret_is_touched() -> None:
    from devicetrust.vault import LazyVault

    calls: list[int] = []

    def load() -> Vault:
        calls.append(1)
        return Vault.from_key(bytes(KEK_SIZE))

    lazy = LazyVault(load)
    assert not lazy.loaded and calls == []
    sealed = lazy.seal(b"s3cret", aad=b"x")
    assert bytes(lazy.open(sealed, aad=b"x")) == b"s3cret"
    assert calls == [1]
    lazy.close()

"""Where the password that encrypts a CA key file comes from: `KeyPassword` sources.

Two sources, both giving a 256-bit random-looking password (so the PBKDF2 inside PKCS#8 is not
what stands between an attacker and the key):

- `PassphrasePassword`: an operator passphrase stretched with scrypt (RFC 7914) and a random
  per-key salt kept beside the key file;
- `KekPassword`: a fresh random password per key, sealed by the platform KEK (`Vault`, i.e.
  `DEVICETRUST_KEK`) and kept beside the key file.

Never writes, logs, repr()s or pickles a passphrase or password; hands passwords out only in
`bytearray`s the caller zeroes. Never accepts scrypt costs below the floor, whatever a stored
record says.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from typing import NoReturn, Protocol

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from devicetrust.domain.errors import ConfigurationError, DeviceTrustError
from devicetrust.pki.keys._errors import KeyClosed, KeyFileInvalid, KeyUnlockFailed
from devicetrust.vault import Vault

PASSWORD_SIZE = 32
SALT_SIZE = 16
MIN_PASSPHRASE_LENGTH = 12
MAX_PASSPHRASE_LENGTH = 1024
# scrypt cost (RFC 7914 §2). A CA key is unlocked rarely, so the default spends 128 MiB and
# a fraction of a second; the floor is the interactive-login setting, the ceiling bounds what a
# doctored record could make us allocate.
SCRYPT_N_DEFAULT = 2**17
SCRYPT_N_MIN = 2**14
SCRYPT_N_MAX = 2**20
SCRYPT_R = 8
SCRYPT_P = 1

_HEX_DIGITS = b"0123456789abcdef"
_SEAL_LABEL = b"devicetrust/pki/key-file-password/v1\x00"


@dataclass(frozen=True, slots=True)
class ScryptParameters:
    """Public scrypt inputs stored beside a passphrase-protected key file."""

    salt: bytes
    n: int
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    def check(self) -> None:
        """Refuse costs outside the accepted range (fail closed on a doctored record)."""
        power_of_two = self.n > 1 and self.n & (self.n - 1) == 0
        if not (power_of_two and SCRYPT_N_MIN <= self.n <= SCRYPT_N_MAX):
            raise KeyFileInvalid(
                f"scrypt N must be a power of two in [2**14, 2**20], got {self.n}", n=self.n
            )
        if (self.r, self.p) != (SCRYPT_R, SCRYPT_P):
            raise KeyFileInvalid("scrypt r and p must be 8 and 1", r=self.r, p=self.p)
        if len(self.salt) < SALT_SIZE:
            raise KeyFileInvalid(f"the scrypt salt is at least {SALT_SIZE} bytes")


@dataclass(frozen=True, slots=True)
class SealedPassword:
    """A key file's random password sealed by the KEK whose public fingerprint is `kek_id`."""

    kek_id: str
    sealed: bytes


PasswordRecord = ScryptParameters | SealedPassword


class KeyPassword(Protocol):
    """A source of key-file passwords. `binding` names the key (id and algorithm); a source
    that seals binds it in, so a record copied to another key does not open."""

    def new_password(self, binding: bytes) -> tuple[bytearray, PasswordRecord]:
        """A password for a new key file, and the public record to store beside it."""
        ...

    def recover_password(self, record: PasswordRecord, binding: bytes) -> bytearray:
        """The password of an existing key file from its stored record."""
        ...


def _zero(buf: bytearray) -> None:
    buf[:] = bytes(len(buf))


def _hex_into_bytearray(raw: bytearray) -> bytearray:
    """Hex-encode without creating an immutable copy. ASCII passwords keep the file usable
    with the openssl CLI (which cannot take a password containing NUL bytes)."""
    out = bytearray(2 * len(raw))
    for i, byte in enumerate(raw):
        out[2 * i] = _HEX_DIGITS[byte >> 4]
        out[2 * i + 1] = _HEX_DIGITS[byte & 0x0F]
    return out


class PassphrasePassword:
    """Key-file passwords stretched from an operator passphrase with scrypt."""

    __slots__ = ("_passphrase", "_scrypt_n")

    def __init__(self, passphrase: str, *, scrypt_n: int = SCRYPT_N_DEFAULT) -> None:
        """`passphrase` is NFC-normalised (the same words typed elsewhere give the same key)
        and kept in a `bytearray` until `close()`. `scrypt_n` applies to new key files."""
        if not isinstance(passphrase, str):
            raise ConfigurationError("config.invalid_passphrase", "the passphrase is a string")
        normalised = unicodedata.normalize("NFC", passphrase)
        if not MIN_PASSPHRASE_LENGTH <= len(normalised) <= MAX_PASSPHRASE_LENGTH:
            raise ConfigurationError(
                "config.invalid_passphrase",
                f"a CA key passphrase has {MIN_PASSPHRASE_LENGTH}-{MAX_PASSPHRASE_LENGTH} "
                "characters",
            )
        ScryptParameters(salt=bytes(SALT_SIZE), n=scrypt_n).check()
        self._passphrase = bytearray(normalised.encode("utf-8"))
        self._scrypt_n = scrypt_n

    def new_password(self, binding: bytes) -> tuple[bytearray, PasswordRecord]:
        params = ScryptParameters(salt=secrets.token_bytes(SALT_SIZE), n=self._scrypt_n)
        return self._derive(params), params

    def recover_password(self, record: PasswordRecord, binding: bytes) -> bytearray:
        if not isinstance(record, ScryptParameters):
            raise KeyUnlockFailed(
                "this key file is protected by the platform KEK, not by a passphrase",
                protection="kek",
            )
        record.check()
        return self._derive(record)

    def close(self) -> None:
        _zero(self._passphrase)
        self._passphrase = bytearray()

    def _derive(self, params: ScryptParameters) -> bytearray:
        if not self._passphrase:
            raise KeyClosed("the passphrase source is closed")
        raw = bytearray(PASSWORD_SIZE)
        try:
            kdf = Scrypt(salt=params.salt, length=PASSWORD_SIZE, n=params.n, r=params.r, p=params.p)
            kdf.derive_into(self._passphrase, raw)
            return _hex_into_bytearray(raw)
        finally:
            _zero(raw)

    def __repr__(self) -> str:
        return "<PassphrasePassword>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a PassphrasePassword holds a secret and cannot be pickled or copied")


class KekPassword:
    """Key-file passwords drawn at random and sealed by the platform KEK (`Vault`).

    The vault is borrowed, not owned: closing this source does not close the vault."""

    __slots__ = ("_vault",)

    def __init__(self, vault: Vault) -> None:
        if not isinstance(vault, Vault):
            raise TypeError("KekPassword takes a devicetrust.vault.Vault")
        self._vault = vault

    def new_password(self, binding: bytes) -> tuple[bytearray, PasswordRecord]:
        raw = bytearray(secrets.token_bytes(PASSWORD_SIZE))
        try:
            password = _hex_into_bytearray(raw)
        finally:
            _zero(raw)
        try:
            sealed = self._vault.seal(password, aad=_SEAL_LABEL + binding)
        except DeviceTrustError:
            _zero(password)
            raise
        return password, SealedPassword(kek_id=self._vault.key_id, sealed=sealed)

    def recover_password(self, record: PasswordRecord, binding: bytes) -> bytearray:
        if not isinstance(record, SealedPassword):
            raise KeyUnlockFailed(
                "this key file is protected by a passphrase, not by the platform KEK",
                protection="passphrase",
            )
        if not secrets.compare_digest(record.kek_id, self._vault.key_id):
            raise KeyUnlockFailed(
                "this key file was sealed under another key-encryption key",
                sealed_kek_id=record.kek_id,
                kek_id=self._vault.key_id,
            )
        try:
            return self._vault.open(record.sealed, aad=_SEAL_LABEL + binding)
        except ConfigurationError as exc:
            raise KeyUnlockFailed(
                "the key file's sealed password does not open under this KEK",
                reason=exc.code,
            ) from exc

    def __repr__(self) -> str:
        return f"<KekPassword kek_id={self._vault.key_id}>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a KekPassword borrows a vault and cannot be pickled or copied")

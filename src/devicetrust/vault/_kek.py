"""Where a key-encryption key (KEK) comes from: the `DEVICETRUST_KEK` text form, a passphrase,
or a fresh one from the CSPRNG.

Never logs, echoes or puts key material in an error message; returns keys in `bytearray`s
the caller zeroes. Never accepts a short, padded-out or otherwise non-canonical key text: a KEK
that decodes "nearly" right is a configuration mistake to report, not to repair.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import unicodedata

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from devicetrust.domain.errors import ConfigurationError

KEK_SIZE = 32
# scrypt cost: N=2**15, r=8, p=1 (RFC 7914 §2; 32 MiB, the interactive-login setting).
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
MIN_SALT_SIZE = 16
MIN_PASSPHRASE_LENGTH = 12
MAX_PASSPHRASE_LENGTH = 1024

# 32 bytes in base64url: 43 characters, optionally one "=" of padding.
_KEK_TEXT_RE = re.compile(r"[A-Za-z0-9_-]{43}=?")


def generate_kek_text() -> str:
    """A new KEK from the OS CSPRNG, in the base64url form `DEVICETRUST_KEK` takes."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEK_SIZE)).rstrip(b"=").decode("ascii")


def decode_kek_text(text: str) -> bytearray:
    """Decode `DEVICETRUST_KEK` (base64url of exactly 32 bytes, padding optional)."""
    hint = "DEVICETRUST_KEK must be base64url of 32 random bytes (generate one with the CLI)"
    if not isinstance(text, str):
        raise ConfigurationError("config.invalid_kek", f"{hint}; got a {type(text).__name__}")
    stripped = text.strip()
    if not _KEK_TEXT_RE.fullmatch(stripped):
        # Say what is wrong with the shape, never echo the value.
        raise ConfigurationError(
            "config.invalid_kek", f"{hint}; got {len(stripped)} characters", length=len(stripped)
        )
    unpadded = stripped.rstrip("=")
    try:
        raw = bytearray(base64.urlsafe_b64decode(unpadded + "="))
    except binascii.Error as exc:
        raise ConfigurationError("config.invalid_kek", hint) from exc
    # The last character carries 2 spare bits; a canonical encoding leaves them zero.
    canonical = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    if len(raw) != KEK_SIZE or not secrets.compare_digest(canonical, unpadded):
        raw[:] = bytes(len(raw))
        raise ConfigurationError("config.invalid_kek", f"{hint}; the encoding is not canonical")
    return raw


def derive_kek(passphrase: str, salt: bytes) -> bytearray:
    """scrypt(passphrase, salt) -> 32-byte KEK. The passphrase is NFC-normalised first so the
    same words typed on different systems give the same key."""
    if not isinstance(passphrase, str):
        raise ConfigurationError("config.invalid_passphrase", "the passphrase is a string")
    normalised = unicodedata.normalize("NFC", passphrase)
    if not MIN_PASSPHRASE_LENGTH <= len(normalised) <= MAX_PASSPHRASE_LENGTH:
        raise ConfigurationError(
            "config.invalid_passphrase",
            f"the passphrase has {MIN_PASSPHRASE_LENGTH}-{MAX_PASSPHRASE_LENGTH} characters",
        )
    if not isinstance(salt, bytes | bytearray) or len(salt) < MIN_SALT_SIZE:
        raise ConfigurationError(
            "config.invalid_salt", f"the scrypt salt is at least {MIN_SALT_SIZE} random bytes"
        )
    secret = bytearray(normalised.encode("utf-8"))
    out = bytearray(KEK_SIZE)
    try:
        kdf = Scrypt(salt=bytes(salt), length=KEK_SIZE, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
        kdf.derive_into(secret, out)
    finally:
        secret[:] = bytes(len(secret))
    return out

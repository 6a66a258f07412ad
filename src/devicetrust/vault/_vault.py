"""`Vault`: envelope encryption of secrets at rest under one key-encryption key (KEK).

Each `seal` draws a fresh 256-bit data key, encrypts the secret with it (AES-256-GCM), wraps
the data key with the KEK (AES-256-GCM) and returns the record laid out in `_format`. The KEK
never leaves this object: it is held in a `bytearray` zeroed by `close()`, and it is never
logged, repr'd, pickled or put in an error. Secrets come back from `open` in a `bytearray` the
caller zeroes when done.

Limits worth knowing: cryptography's AESGCM object copies the key it is given into memory this
module cannot zero; it is created per call and dropped at once. The CSPRNG hands out `bytes`,
so a data key exists briefly as an immutable object before it is copied and dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from types import TracebackType
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from devicetrust.domain.errors import ConfigurationError
from devicetrust.vault import _format
from devicetrust.vault._kek import KEK_SIZE, decode_kek_text, derive_kek

_KEY_ID_LABEL = b"devicetrust/vault/v1/key-id"


def _zero(buf: bytearray) -> None:
    buf[:] = bytes(len(buf))


class Vault:
    """Seals and opens secrets under one KEK. Build it with a `from_*` constructor."""

    __slots__ = ("_kek", "_key_id")

    def __init__(self, kek: bytearray) -> None:
        """Takes ownership of `kek` (it is zeroed by `close()`); prefer the constructors."""
        if not isinstance(kek, bytearray) or len(kek) != KEK_SIZE:
            raise ConfigurationError(
                "config.invalid_kek", f"a key-encryption key is exactly {KEK_SIZE} bytes"
            )
        self._kek = kek
        # A short public fingerprint of the KEK: it tells "sealed under another key" apart
        # from tampering, and lets a future rotation pick the right key. HMAC, not a plain
        # hash, so it reveals nothing usable about the key.
        self._key_id = hmac.new(kek, _KEY_ID_LABEL, hashlib.sha256).digest()[: _format.KEY_ID_SIZE]

    @classmethod
    def from_key(cls, key: bytes | bytearray) -> Vault:
        """A vault over a copy of `key` (32 bytes); the caller zeroes its own buffer."""
        if not isinstance(key, bytes | bytearray) or len(key) != KEK_SIZE:
            raise ConfigurationError(
                "config.invalid_kek", f"a key-encryption key is exactly {KEK_SIZE} bytes"
            )
        return cls(bytearray(key))

    @classmethod
    def from_encoded(cls, text: str) -> Vault:
        """From the `DEVICETRUST_KEK` form: base64url of 32 bytes."""
        return cls(decode_kek_text(text))

    @classmethod
    def from_passphrase(cls, passphrase: str, salt: bytes) -> Vault:
        """From a passphrase, via scrypt (N=2**15, r=8, p=1) with a stored random salt."""
        return cls(derive_kek(passphrase, salt))

    @property
    def key_id(self) -> str:
        """Hex fingerprint of the KEK, safe to show (status pages, logs)."""
        return self._key_id.hex()

    @property
    def closed(self) -> bool:
        return not self._kek

    def seal(self, plaintext: bytes | bytearray, *, aad: bytes) -> bytes:
        """Encrypt `plaintext` for storage; `aad` names the record it belongs to (e.g. the
        webhook id) and must be given again to open it."""
        kek = self._require_open()
        if not isinstance(plaintext, bytes | bytearray):
            raise TypeError("seal() takes bytes or a bytearray")
        aad = _check_aad(aad)
        header = bytes([_format.VERSION_1]) + self._key_id
        data_key = bytearray(secrets.token_bytes(_format.DATA_KEY_SIZE))
        try:
            wrap_nonce = secrets.token_bytes(_format.NONCE_SIZE)
            wrapped = bytearray(_format.WRAPPED_KEY_SIZE)
            AESGCM(kek).encrypt_into(wrap_nonce, data_key, _format.wrap_aad(header, aad), wrapped)
            data_nonce = secrets.token_bytes(_format.NONCE_SIZE)
            ciphertext = bytearray(len(plaintext) + _format.TAG_SIZE)
            AESGCM(data_key).encrypt_into(
                data_nonce, plaintext, _format.data_aad(header, aad), ciphertext
            )
        finally:
            _zero(data_key)
        envelope = _format.Envelope(
            key_id=self._key_id,
            wrap_nonce=wrap_nonce,
            wrapped_key=bytes(wrapped),
            data_nonce=data_nonce,
            ciphertext=bytes(ciphertext),
        )
        return envelope.to_bytes()

    def open(self, sealed: bytes, *, aad: bytes) -> bytearray:
        """Decrypt a record made by `seal` with the same KEK and `aad`. Raises
        `ConfigurationError` `vault.unseal_failed` if anything about it does not check out."""
        kek = self._require_open()
        aad = _check_aad(aad)
        envelope = _format.parse(sealed)
        if not hmac.compare_digest(envelope.key_id, self._key_id):
            raise _format.unseal_failed(
                "sealed under another key-encryption key (or the key id was altered)",
                sealed_key_id=envelope.key_id.hex(),
                vault_key_id=self.key_id,
            )
        header = envelope.header
        data_key = bytearray(_format.DATA_KEY_SIZE)
        plaintext = bytearray(envelope.payload_size)
        try:
            AESGCM(kek).decrypt_into(
                envelope.wrap_nonce,
                envelope.wrapped_key,
                _format.wrap_aad(header, aad),
                data_key,
            )
            AESGCM(data_key).decrypt_into(
                envelope.data_nonce,
                envelope.ciphertext,
                _format.data_aad(header, aad),
                plaintext,
            )
        except InvalidTag as exc:
            _zero(plaintext)
            raise _format.unseal_failed(
                "authentication failed (tampered record or different aad)"
            ) from exc
        finally:
            _zero(data_key)
        return plaintext

    def close(self) -> None:
        """Zero the KEK; the vault refuses all work afterwards."""
        _zero(self._kek)
        self._kek = bytearray()

    def __enter__(self) -> Vault:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        kek = getattr(self, "_kek", None)
        if kek:
            _zero(kek)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"key_id={self.key_id}"
        return f"<Vault {state}>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Vault holds a key-encryption key and cannot be pickled or copied")

    def _require_open(self) -> bytearray:
        if not self._kek:
            raise ConfigurationError("vault.closed", "the vault is closed (its key was zeroed)")
        return self._kek


def _check_aad(aad: bytes) -> bytes:
    if not isinstance(aad, bytes | bytearray) or not aad:
        # Fail closed: a secret must be bound to the record it belongs to.
        raise TypeError("aad is the non-empty bytes naming the record the secret belongs to")
    return bytes(aad)

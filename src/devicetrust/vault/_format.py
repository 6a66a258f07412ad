"""The sealed-record layout (version 1). Pure bytes in, bytes out; no keys, no I/O.

    offset  size  field
    0       1     version (0x01)
    1       4     key id: which key-encryption key (KEK) wrapped the data key
    5       12    wrap nonce
    17      48    data key wrapped by the KEK with AES-256-GCM (32 bytes + 16-byte tag)
    65      12    data nonce
    77      n+16  payload encrypted with the data key with AES-256-GCM (n bytes + tag)

The 5-byte header is bound into both AEAD computations, so changing the version or key id
makes the record fail to open. Each computation also binds the caller's `aad` (the record the
secret belongs to) behind a fixed label, so a sealed value copied to another record, or the
wrapped key of one record spliced into another, does not open. Never parses more leniently
than this table: a record of any other shape is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from devicetrust.domain.errors import ConfigurationError

VERSION_1 = 0x01
KEY_ID_SIZE = 4
NONCE_SIZE = 12  # 96-bit GCM nonces (NIST SP 800-38D §8.2.2, random construction)
TAG_SIZE = 16
DATA_KEY_SIZE = 32
HEADER_SIZE = 1 + KEY_ID_SIZE
WRAPPED_KEY_SIZE = DATA_KEY_SIZE + TAG_SIZE
_PAYLOAD_AT = HEADER_SIZE + NONCE_SIZE + WRAPPED_KEY_SIZE + NONCE_SIZE
OVERHEAD = _PAYLOAD_AT + TAG_SIZE

# Fixed-length labels keep the two AEAD inputs apart (domain separation).
_WRAP_LABEL = b"devicetrust/vault/v1/data-key\x00"
_DATA_LABEL = b"devicetrust/vault/v1/payload\x00\x00"


def unseal_failed(reason: str, **details: object) -> ConfigurationError:
    """The one error for a record that does not open, whatever the cause (tampered record,
    other KEK, other `aad`): the cause goes in `details` for the operator's logs."""
    return ConfigurationError(
        "vault.unseal_failed",
        f"a sealed secret could not be opened: {reason}",
        reason=reason,
        **details,
    )


@dataclass(frozen=True, slots=True)
class Envelope:
    key_id: bytes
    wrap_nonce: bytes
    wrapped_key: bytes
    data_nonce: bytes
    ciphertext: bytes  # payload ciphertext followed by its tag

    @property
    def header(self) -> bytes:
        return bytes([VERSION_1]) + self.key_id

    def to_bytes(self) -> bytes:
        return self.header + self.wrap_nonce + self.wrapped_key + self.data_nonce + self.ciphertext

    @property
    def payload_size(self) -> int:
        return len(self.ciphertext) - TAG_SIZE


def parse(blob: bytes) -> Envelope:
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise unseal_failed("a sealed record is bytes")
    data = bytes(blob)
    if len(data) < OVERHEAD:
        raise unseal_failed("record too short", size=len(data))
    if data[0] != VERSION_1:
        raise unseal_failed("unknown record version", version=data[0])
    at = 1
    key_id = data[at : at + KEY_ID_SIZE]
    at += KEY_ID_SIZE
    wrap_nonce = data[at : at + NONCE_SIZE]
    at += NONCE_SIZE
    wrapped_key = data[at : at + WRAPPED_KEY_SIZE]
    at += WRAPPED_KEY_SIZE
    data_nonce = data[at : at + NONCE_SIZE]
    at += NONCE_SIZE
    return Envelope(key_id, wrap_nonce, wrapped_key, data_nonce, data[at:])


def wrap_aad(header: bytes, aad: bytes) -> bytes:
    return _WRAP_LABEL + header + aad


def data_aad(header: bytes, aad: bytes) -> bytes:
    return _DATA_LABEL + header + aad

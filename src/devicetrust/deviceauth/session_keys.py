"""Short-lived session keys derived from a unit's primary (token) key, and an epoch ratchet
for forward secrecy. Pure: no clock, no store; the device SDK and the server compute alike.

    session key, epoch 0   K0   = HKDF-SHA256(ikm=primary, salt=session salt,
                                              info=context(identity, session id, 0))
    next epoch             K(n+1) = HKDF-SHA256(ikm=K(n), salt=session salt,
                                              info=context(identity, session id, n+1) | ratchet)

HKDF is RFC 5869 (`cryptography`'s implementation, `derive_into` so the output lands in a
`bytearray` this module zeroes). The primary key is used only as HKDF input, never on the
wire; the salt is fresh per session (16+ CSPRNG bytes, sent in clear); the context binds the
key to the unit, the session and the epoch (length-prefixed fields, so no two contexts
encode alike). Advancing the ratchet zeroes the old key: whoever reads a device's memory at
epoch n learns nothing of the keys of epochs before n (HKDF is one-way). It does not protect
past sessions against a leak of the primary key (that is what TLS 1.3's ephemeral ECDHE
gives the transport; see docs/authentication.md).

Limits worth knowing: `cryptography` copies key material into memory this module cannot
zero while it computes; Python `bytes` handed in by a caller are the caller's to drop.
"""

from __future__ import annotations

import struct
from types import TracebackType

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from devicetrust.domain.errors import InvalidInput

HASH_SIZE = 32
MAX_OUTPUT = 255 * HASH_SIZE  # RFC 5869 §2.3: L <= 255 * HashLen
SESSION_KEY_SIZE = 32
MIN_SALT = 16
_LABEL = b"devicetrust/session/v1"
_RATCHET = b"ratchet"


class SessionKeyError(InvalidInput):
    def __init__(self, message: str) -> None:
        super().__init__("deviceauth.session_key_invalid", message)


def zero(buf: bytearray) -> None:
    buf[:] = bytes(len(buf))


def hkdf_sha256(
    ikm: bytes | bytearray, *, salt: bytes | None, info: bytes, length: int
) -> bytearray:
    """RFC 5869 HKDF-SHA256 into a fresh `bytearray` the caller zeroes. An empty or absent
    salt is HashLen zero bytes (§2.2). Refuses a length outside 1..8160 (§2.3)."""
    if not 1 <= length <= MAX_OUTPUT:
        raise SessionKeyError(f"HKDF-SHA256 output is 1..{MAX_OUTPUT} bytes")
    out = bytearray(length)
    HKDF(hashes.SHA256(), length, salt or None, info).derive_into(ikm, out)
    return out


def context_info(identity: str, session_id: str, epoch: int, *, ratchet: bool = False) -> bytes:
    """The HKDF `info` of one epoch of one session of one unit."""
    if not 0 <= epoch < 2**63:
        raise SessionKeyError("an epoch is 0..2**63-1")
    fields = [identity.encode("utf-8"), session_id.encode("utf-8")]
    if not all(1 <= len(f) <= 255 for f in fields):
        raise SessionKeyError("identity and session id are 1-255 bytes")
    parts = [_LABEL]
    parts += [bytes([len(f)]) + f for f in fields]
    parts.append(struct.pack(">Q", epoch))
    if ratchet:
        parts.append(_RATCHET)
    return b"".join(parts)


def derive_session_key(
    primary: bytes | bytearray,
    *,
    salt: bytes,
    identity: str,
    session_id: str,
    length: int = SESSION_KEY_SIZE,
) -> bytearray:
    """Epoch 0 of a session: the only derivation that reads the primary key."""
    if len(salt) < MIN_SALT:
        raise SessionKeyError(f"a session salt has at least {MIN_SALT} bytes")
    return hkdf_sha256(
        primary, salt=salt, info=context_info(identity, session_id, 0), length=length
    )


class SessionKeyRatchet:
    """One session's key, advanced epoch by epoch; the previous key is zeroed at each step."""

    __slots__ = ("_closed", "_epoch", "_identity", "_key", "_salt", "_session_id")

    def __init__(
        self, primary: bytes | bytearray, *, salt: bytes, identity: str, session_id: str
    ) -> None:
        self._key = derive_session_key(primary, salt=salt, identity=identity, session_id=session_id)
        self._salt = bytes(salt)
        self._identity = identity
        self._session_id = session_id
        self._epoch = 0
        self._closed = False

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def closed(self) -> bool:
        return self._closed

    def key_copy(self) -> bytearray:
        """The current epoch's key, in a `bytearray` the caller zeroes."""
        if self.closed:
            raise SessionKeyError("the session is closed")
        return bytearray(self._key)

    def advance(self) -> int:
        """Move to the next epoch: derive it from the current key, then erase the current
        key. Returns the new epoch."""
        if self.closed:
            raise SessionKeyError("the session is closed")
        info = context_info(self._identity, self._session_id, self._epoch + 1, ratchet=True)
        nxt = hkdf_sha256(self._key, salt=self._salt, info=info, length=len(self._key))
        zero(self._key)
        self._key = nxt
        self._epoch += 1
        return self._epoch

    def advance_to(self, epoch: int) -> None:
        """Catch up to `epoch` (never back: an erased key cannot be recomputed)."""
        if epoch < self._epoch:
            raise SessionKeyError("the ratchet never goes back to an erased epoch")
        while self._epoch < epoch:
            self.advance()

    def close(self) -> None:
        zero(self._key)
        self._closed = True

    def __enter__(self) -> SessionKeyRatchet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SessionKeyRatchet(epoch={self._epoch}, closed={self.closed})"

"""The offline buffer: every message the device publishes, kept on disk until the gateway
acknowledged it (PUBACK), so nothing is lost across a disconnection or a restart.

A small SQLite file (`<data dir>/buffer.db`, 0600, WAL); each row holds one message
encrypted with AES-256-GCM under a key sealed in the keystore. The associated data binds
the row to its `msg-id`, so a row cannot be swapped for another. Rows leave in the order
they came (`seq`), and a row is deleted only when its PUBACK arrived.

Bounded by count and by bytes. At the bound, `Overflow.REFUSE` (the default) raises
`BufferFull` and keeps everything already accepted; `Overflow.DROP_OLDEST` deletes the
oldest rows to make room and counts them in `dropped`.

Never writes a payload in clear, never logs one.
"""

from __future__ import annotations

import enum
import json
import os
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from devicetrust.device.client._errors import BufferFull, StateFileInvalid

BUFFER_FILE = "buffer.db"
_AAD = b"devicetrust-buffer-v1\n"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS message (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id TEXT NOT NULL UNIQUE,
    nonce BLOB NOT NULL,
    sealed BLOB NOT NULL
)
"""


class Overflow(enum.Enum):
    """What the buffer does when it is full."""

    REFUSE = "refuse"
    DROP_OLDEST = "drop-oldest"


@dataclass(frozen=True)
class BufferedMessage:
    seq: int
    msg_id: str
    stream: str
    payload: bytes
    content_type: str


class OfflineBuffer:
    """Encrypted, bounded, ordered, persistent. Thread-safe."""

    def __init__(
        self,
        path: Path,
        key: bytes | bytearray,
        *,
        max_messages: int = 10_000,
        max_bytes: int = 16 * 1024 * 1024,
        overflow: Overflow = Overflow.REFUSE,
    ) -> None:
        if len(key) != 32:
            raise ValueError("the buffer key is 32 bytes (AES-256)")
        if max_messages < 1 or max_bytes < 1:
            raise ValueError("the buffer bounds are positive")
        self._aead = AESGCM(bytes(key))
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._overflow = overflow
        self._lock = threading.Lock()
        self.dropped = 0
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        self._count, self._bytes = self._db.execute(
            "SELECT count(*), coalesce(sum(length(sealed)), 0) FROM message"
        ).fetchone()

    def __len__(self) -> int:
        return int(self._count)

    @property
    def size_bytes(self) -> int:
        return int(self._bytes)

    def append(
        self, stream: str, payload: bytes, content_type: str = "application/json",
        msg_id: str | None = None,
    ) -> BufferedMessage:
        """Persist one message (durably, before returning) and return it with its `seq`."""
        msg_id = msg_id or secrets.token_hex(16)
        header = json.dumps({"stream": stream, "content_type": content_type}).encode()
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, header + b"\n" + payload, _AAD + msg_id.encode())
        with self._lock:
            self._make_room(len(sealed))
            cursor = self._db.execute(
                "INSERT INTO message (msg_id, nonce, sealed) VALUES (?, ?, ?)",
                (msg_id, nonce, sealed),
            )
            self._count += 1
            self._bytes += len(sealed)
            seq = int(cursor.lastrowid or 0)
        return BufferedMessage(seq, msg_id, stream, payload, content_type)

    def _make_room(self, size: int) -> None:
        if size > self._max_bytes:
            raise BufferFull("the message is larger than the whole buffer")
        while self._count + 1 > self._max_messages or self._bytes + size > self._max_bytes:
            if self._overflow is Overflow.REFUSE:
                raise BufferFull(
                    f"the offline buffer holds {self._count} messages, {self._bytes} bytes"
                )
            row = self._db.execute(
                "SELECT seq, length(sealed) FROM message ORDER BY seq LIMIT 1"
            ).fetchone()
            self._db.execute("DELETE FROM message WHERE seq = ?", (row[0],))
            self._count -= 1
            self._bytes -= int(row[1])
            self.dropped += 1

    def after(self, seq: int, limit: int) -> list[BufferedMessage]:
        """Up to `limit` messages with a larger `seq`, oldest first, decrypted."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, msg_id, nonce, sealed FROM message WHERE seq > ? ORDER BY seq "
                "LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [self._open(*row) for row in rows]

    def _open(self, seq: int, msg_id: str, nonce: bytes, sealed: bytes) -> BufferedMessage:
        try:
            plain = self._aead.decrypt(nonce, sealed, _AAD + msg_id.encode())
        except InvalidTag as exc:
            raise StateFileInvalid(
                "a buffered message does not decrypt (wrong key or tampered)",
                code="device.buffer_tampered",
            ) from exc
        header, _, payload = plain.partition(b"\n")
        meta = json.loads(header)
        return BufferedMessage(seq, msg_id, meta["stream"], payload, meta["content_type"])

    def remove(self, seq: int) -> None:
        """Forget an acknowledged message (a no-op if it is already gone)."""
        with self._lock:
            row = self._db.execute(
                "DELETE FROM message WHERE seq = ? RETURNING length(sealed)", (seq,)
            ).fetchone()
            if row is not None:
                self._count -= 1
                self._bytes -= int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

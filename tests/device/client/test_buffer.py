"""The offline buffer: encrypted at rest, ordered, bounded (refuse or drop the oldest),
persistent across a reopen, and refusing a tampered row."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from devicetrust.device.client import BufferFull, OfflineBuffer, Overflow, StateFileInvalid


def _key() -> bytes:
    return os.urandom(32)


def test_messages_come_back_in_order_after_a_reopen(tmp_path: Path) -> None:
    key, path = _key(), tmp_path / "buffer.db"
    buffer = OfflineBuffer(path, key)
    ids = [buffer.append("telemetry", f'{{"n":{n}}}'.encode()).msg_id for n in range(3)]
    buffer.close()
    again = OfflineBuffer(path, key)
    got = again.after(0, 10)
    assert [m.msg_id for m in got] == ids
    assert [m.payload for m in got] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    assert len(again) == 3 and path.stat().st_mode & 0o777 == 0o600
    again.remove(got[0].seq)
    assert [m.msg_id for m in again.after(0, 10)] == ids[1:]
    assert [m.msg_id for m in again.after(got[1].seq, 10)] == ids[2:]


def test_nothing_is_in_clear_on_disk(tmp_path: Path) -> None:
    buffer = OfflineBuffer(tmp_path / "b.db", _key())
    buffer.append("diagnostics", b'{"secret_torque": 123456789}')
    buffer.close()
    for file in tmp_path.iterdir():
        assert b"secret_torque" not in file.read_bytes()


def test_refuse_policy_keeps_what_was_accepted(tmp_path: Path) -> None:
    buffer = OfflineBuffer(tmp_path / "b.db", _key(), max_messages=2)
    buffer.append("telemetry", b"1")
    buffer.append("telemetry", b"2")
    with pytest.raises(BufferFull):
        buffer.append("telemetry", b"3")
    assert [m.payload for m in buffer.after(0, 10)] == [b"1", b"2"]


def test_drop_oldest_policy_by_count_and_bytes(tmp_path: Path) -> None:
    buffer = OfflineBuffer(tmp_path / "b.db", _key(), max_messages=2,
                           overflow=Overflow.DROP_OLDEST)
    for payload in (b"1", b"2", b"3"):
        buffer.append("telemetry", payload)
    assert [m.payload for m in buffer.after(0, 10)] == [b"2", b"3"] and buffer.dropped == 1

    small = OfflineBuffer(tmp_path / "s.db", _key(), max_bytes=200,
                          overflow=Overflow.DROP_OLDEST)
    for n in range(10):
        small.append("telemetry", bytes([n]) * 50)
    assert small.size_bytes <= 200 and small.after(0, 10)[-1].payload == bytes([9]) * 50


def test_a_tampered_or_foreign_key_row_is_refused(tmp_path: Path) -> None:
    path, key = tmp_path / "b.db", _key()
    buffer = OfflineBuffer(path, key)
    buffer.append("telemetry", b"x")
    buffer.close()
    with pytest.raises(StateFileInvalid):
        OfflineBuffer(path, _key()).after(0, 10)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE message SET msg_id = 'other'")  # a row moved onto another id
    with pytest.raises(StateFileInvalid):
        OfflineBuffer(path, key).after(0, 10)
    with pytest.raises(ValueError):
        OfflineBuffer(path, b"short")

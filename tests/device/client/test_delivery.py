"""Delivery of the buffer over a connection: in order, windowed, deleted only at PUBACK,
everything unacknowledged sent again on a new connection, a refusal removed and counted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devicetrust.device.client import BufferedMessage, OfflineBuffer
from devicetrust.device.client._delivery import Delivery


class Wire:
    """What a connection would have sent: (mid, msg-id), mids counting up like paho's."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    def publish(self, message: BufferedMessage) -> int:
        self.sent.append((len(self.sent) + 1, message.msg_id))
        return len(self.sent)


@pytest.fixture
def buffer(tmp_path: Path) -> OfflineBuffer:
    return OfflineBuffer(tmp_path / "b.db", os.urandom(32))


def test_in_order_within_the_window_and_deleted_only_at_puback(buffer: OfflineBuffer) -> None:
    ids = [buffer.append("telemetry", b"{}").msg_id for _ in range(5)]
    delivery, wire = Delivery(buffer, window=2), Wire()
    assert delivery.pump(wire.publish) == 2 and delivery.pump(wire.publish) == 0
    delivery.acknowledged(1, 0x00)
    assert len(buffer) == 4
    delivery.pump(wire.publish)
    delivery.acknowledged(2, 0x10)  # no matching subscribers: still a success
    delivery.acknowledged(3, 0x00)
    while delivery.pump(wire.publish) or delivery.in_flight:
        delivery.acknowledged(wire.sent[-1][0], 0x00)
        delivery.acknowledged(wire.sent[-2][0], 0x00)
    assert [msg_id for _, msg_id in wire.sent] == ids and len(buffer) == 0


def test_a_new_connection_resends_the_unacknowledged_with_the_same_ids(
    buffer: OfflineBuffer,
) -> None:
    ids = [buffer.append("diagnostics", b"{}").msg_id for _ in range(3)]
    delivery, first = Delivery(buffer), Wire()
    delivery.pump(first.publish)
    delivery.acknowledged(1, 0x00)
    delivery.restart()
    second = Wire()
    delivery.pump(second.publish)
    assert [msg_id for _, msg_id in second.sent] == ids[1:]
    delivery.acknowledged(99, 0x00)  # a mid this connection never sent: ignored
    assert len(buffer) == 2


def test_a_refused_message_is_removed_and_counted(buffer: OfflineBuffer) -> None:
    buffer.append("diagnostics", b"{}")
    buffer.append("diagnostics", b"{}")
    delivery, wire = Delivery(buffer), Wire()
    delivery.pump(wire.publish)
    delivery.acknowledged(1, 0x99)
    delivery.acknowledged(2, 0x00)
    assert delivery.rejected == 1 and len(buffer) == 0
    with pytest.raises(ValueError):
        Delivery(buffer, window=0)

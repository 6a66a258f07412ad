"""What the codec raises when bytes are not a valid MQTT packet stream.

    InvalidInput (devicetrust.domain)
    +-- MqttError                     reason_code: the MQTT 5 reason code to send back
        +-- MalformedPacket           0x81  bytes that cannot be parsed per the spec
        +-- ProtocolError             0x82  parsed, but breaks a rule of the protocol
        |   +-- UnsupportedProtocolVersion  0x84  CONNECT with an unknown name or level
        +-- PacketTooLarge            0x95  remaining length over the maximum packet size

After any of these the connection must be closed (MQTT 5.0 section 4.13): for MQTT 5 after a
DISCONNECT (or CONNACK, when the CONNECT itself was bad) carrying `reason_code`; for 3.1.1 the
server just closes, except `UnsupportedProtocolVersion`, answered with CONNACK return code 1.
The message says which rule was broken, for logs; it is not meant for the remote party.
"""

from __future__ import annotations

from typing import Any, ClassVar

from devicetrust.domain import InvalidInput

from .reason_codes import ReasonCode


class MqttError(InvalidInput):
    """A byte stream that is not valid MQTT. Carries the reason code to answer with."""

    default_code: ClassVar[str] = "mqtt.invalid"
    reason_code: ReasonCode = ReasonCode.UNSPECIFIED_ERROR

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.default_code, message, **details)


class MalformedPacket(MqttError):
    default_code = "mqtt.malformed_packet"
    reason_code = ReasonCode.MALFORMED_PACKET


class ProtocolError(MqttError):
    default_code = "mqtt.protocol_error"
    reason_code = ReasonCode.PROTOCOL_ERROR


class UnsupportedProtocolVersion(ProtocolError):
    default_code = "mqtt.unsupported_protocol_version"
    reason_code = ReasonCode.UNSUPPORTED_PROTOCOL_VERSION


class PacketTooLarge(MqttError):
    default_code = "mqtt.packet_too_large"
    reason_code = ReasonCode.PACKET_TOO_LARGE

"""The codec's public surface, pinned: the connection handler builds on exactly these names."""

from __future__ import annotations

import devicetrust.gateway.codec as codec

EXPECTED = {
    "DEFAULT_MAX_PACKET_SIZE", "NO_PROPERTIES", "Auth", "Connack", "Connect", "Decoder",
    "Disconnect", "MalformedPacket", "MqttError", "Packet", "PacketTooLarge", "PacketType",
    "Pingreq", "Pingresp", "Properties", "PropertyId", "ProtocolError", "ProtocolVersion",
    "Puback", "Pubcomp", "Pubrec", "Pubrel", "Publish", "QoS", "ReasonCode", "RetainHandling",
    "SharedSubscription", "Suback", "Subscribe", "Subscription", "UnsupportedProtocolVersion",
    "Unsuback", "Unsubscribe", "Will", "decode", "encode", "encode_puback", "is_valid_topic_filter",
    "is_valid_topic_name", "matches", "parse_shared", "v311_connack_code", "v311_suback_code",
}


def test_public_names_are_exactly_the_expected_ones() -> None:
    assert set(codec.__all__) == EXPECTED
    for name in codec.__all__:
        assert getattr(codec, name) is not None


def test_every_reason_code_of_the_spec_is_there() -> None:
    values = {int(code) for code in codec.ReasonCode}
    assert len(values) == 43
    assert {0x81, 0x82, 0x84, 0x86, 0x87, 0x95, 0x97, 0xA2} <= values
    assert codec.ReasonCode.NORMAL_DISCONNECTION is codec.ReasonCode.SUCCESS


def test_every_property_of_the_spec_is_there() -> None:
    assert len(codec.PropertyId) == 27


def test_the_codec_imports_nothing_of_devicetrust_but_the_domain() -> None:
    import ast
    import pathlib

    root = pathlib.Path(codec.__file__).parent
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                assert not node.module.startswith("devicetrust") or node.module.startswith(
                    "devicetrust.domain"), (path.name, node.module)
                assert node.module.split(".")[0] not in {"asyncio", "socket", "ssl", "time"}
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] not in {"asyncio", "socket", "ssl", "time"}

"""The decisions of the endpoint, as pure functions (the connection handler applies them).

A CONNECT, in this order (`connecting.open_session`):

1. `precheck`, before any database work: the connection quota (0x97), enhanced
   authentication (0x8C, not offered), a will at QoS 2 (0x9B) or retained (0x9A);
2. the credential (`credentials`): 0x87 none, 0x86/0x87 refused;
3. `check_identity`, against the proven identity: the client id is the physical id or empty
   (then assigned; 3.1.1 only with clean session), else 0x85; a will only to the device's own
   diagnostics or telemetry topic, else 0x87;
4. `negotiate`: keep alive (a zero or larger one lowered to the cap; MQTT 5 is told through
   Server Keep Alive), session expiry (capped; a 3.1.1 persistent session lives for the cap),
   the client's Receive Maximum and Maximum Packet Size for what the gateway sends it.

A PUBLISH (`admit_publish`): QoS 2, retain (MQTT 5), a topic alias or a subscription
identifier close the connection (0x9B, 0x9A, 0x94, 0x82); a topic outside the device's own
(`publish_topics`, worked out once per connection and again when its logical identity
changes) is refused (MQTT 5: PUBACK 0x87; 3.1.1, which has no negative PUBACK: close);
Payload Format 1 with a payload that is not UTF-8 is refused (0x99).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from devicetrust.deviceauth import AuthenticatedDevice

from .acl import TopicLayout
from .codec import NO_PROPERTIES, Connect, Properties, ProtocolVersion, Publish, QoS, ReasonCode
from .config import GatewayConfig
from .sink import MessageKind

NEVER_EXPIRES = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Terms:
    keep_alive: int  # seconds, enforced at 1.5x
    session_expiry: int  # seconds
    send_window: int  # QoS 1 feedback in flight at most
    client_max_packet: int | None  # what the client accepts, MQTT 5
    assigned_client_id: str | None


def precheck(connect: Connect, config: GatewayConfig, open_connections: int) -> ReasonCode | None:
    if open_connections > config.max_connections:
        return ReasonCode.QUOTA_EXCEEDED
    if connect.properties.authentication_method is not None:
        return ReasonCode.BAD_AUTHENTICATION_METHOD
    if connect.will is not None:
        if connect.will.qos is QoS.EXACTLY_ONCE:
            return ReasonCode.QOS_NOT_SUPPORTED
        if connect.will.retain:
            return ReasonCode.RETAIN_NOT_SUPPORTED
    return None


def will_kind(layout: TopicLayout, device: AuthenticatedDevice,
              topic: str) -> MessageKind | None:
    """Where a message of this device to `topic` is filed; None: not allowed."""
    kind = layout.publish_kind(device.physical_id, topic)
    if kind is MessageKind.DIAGNOSTICS and device.logical_name is None:
        return None  # diagnostics belong to a logical identity; the unit holds none
    return kind


def publish_topics(layout: TopicLayout, device: AuthenticatedDevice) -> dict[str, MessageKind]:
    """Every topic this device may publish to, with where it is filed (`will_kind`)."""
    topics = {}
    for kind in MessageKind:
        topic = layout.topic(device.physical_id, kind.value)
        if will_kind(layout, device, topic) is kind:
            topics[topic] = kind
    return topics


def check_identity(connect: Connect, device: AuthenticatedDevice,
                   layout: TopicLayout) -> ReasonCode | None:
    client_id = connect.client_id
    if client_id == "":
        if connect.protocol_version is ProtocolVersion.V311 and not connect.clean_start:
            return ReasonCode.CLIENT_IDENTIFIER_NOT_VALID  # 3.1.1 section 3.1.3.1
    elif client_id != device.physical_id:
        return ReasonCode.CLIENT_IDENTIFIER_NOT_VALID
    if connect.will is not None and will_kind(layout, device, connect.will.topic) is None:
        return ReasonCode.NOT_AUTHORIZED
    return None


def negotiate(connect: Connect, device: AuthenticatedDevice, config: GatewayConfig) -> Terms:
    keep_alive = connect.keep_alive
    if not 0 < keep_alive <= config.max_keep_alive:
        keep_alive = config.max_keep_alive
    props = connect.properties
    if connect.protocol_version is ProtocolVersion.V5:
        expiry = min(props.session_expiry_interval or 0, config.max_session_expiry)
        window = min(props.receive_maximum or 65535, config.max_inflight_feedback)
        max_packet = props.maximum_packet_size
    else:
        expiry = 0 if connect.clean_start else config.max_session_expiry
        window, max_packet = config.max_inflight_feedback, None
    return Terms(keep_alive, expiry, window, max_packet,
                 device.physical_id if connect.client_id == "" else None)


def connack_properties(connect: Connect, terms: Terms, config: GatewayConfig) -> Properties:
    """What an MQTT 5 CONNACK tells the client about this server (section 3.2.2.3)."""
    requested_expiry = connect.properties.session_expiry_interval or 0
    return Properties(
        maximum_qos=1,
        retain_available=False,
        wildcard_subscription_available=False,
        subscription_identifier_available=False,
        shared_subscription_available=False,
        maximum_packet_size=config.max_packet_size,
        receive_maximum=config.receive_maximum,
        server_keep_alive=terms.keep_alive if terms.keep_alive != connect.keep_alive else None,
        session_expiry_interval=(terms.session_expiry
                                 if terms.session_expiry != requested_expiry else None),
        assigned_client_identifier=terms.assigned_client_id,
    )


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: ReasonCode
    close: bool  # close the connection (else answer PUBACK `reason` at QoS 1, drop at QoS 0)


_QOS_2 = Refusal(ReasonCode.QOS_NOT_SUPPORTED, close=True)
_RETAIN = Refusal(ReasonCode.RETAIN_NOT_SUPPORTED, close=True)  # Retain Available 0
_ALIAS = Refusal(ReasonCode.TOPIC_ALIAS_INVALID, close=True)  # Topic Alias Maximum 0
_SUBSCRIPTION_ID = Refusal(ReasonCode.PROTOCOL_ERROR, close=True)  # server-to-client only
_FOREIGN = {True: Refusal(ReasonCode.NOT_AUTHORIZED, close=False),
            False: Refusal(ReasonCode.NOT_AUTHORIZED, close=True)}  # by "is MQTT 5"
_NOT_UTF8 = Refusal(ReasonCode.PAYLOAD_FORMAT_INVALID, close=False)


def admit_publish(publish: Publish, version: ProtocolVersion,
                  topics: Mapping[str, MessageKind]) -> MessageKind | Refusal:
    """Where this PUBLISH is filed, or why it is refused; `topics` are the device's own
    (`publish_topics`). Runs for every PUBLISH."""
    v5 = version is ProtocolVersion.V5
    props = publish.properties
    if publish.qos is QoS.EXACTLY_ONCE:
        return _QOS_2
    if v5 and publish.retain:
        return _RETAIN
    if props is not NO_PROPERTIES:  # most PUBLISHes carry none: nothing more to check
        if props.topic_alias is not None:
            return _ALIAS
        if props.subscription_identifiers:
            return _SUBSCRIPTION_ID
    kind = topics.get(publish.topic)
    if kind is None:
        return _FOREIGN[v5]
    if props.payload_format_indicator == 1:
        try:
            publish.payload.decode("utf-8")
        except UnicodeDecodeError:
            return _NOT_UTF8
    return kind

"""Hypothesis strategies: every MQTT packet type, valid for a given protocol version."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from devicetrust.gateway.codec import (
    NO_PROPERTIES,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    Pingreq,
    Pingresp,
    Properties,
    ProtocolVersion,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    QoS,
    ReasonCode,
    RetainHandling,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
    parse_shared,
)
from devicetrust.gateway.codec import reason_codes as rc
from devicetrust.gateway.codec.properties import _SPECS, WILL, _Kind

V5 = ProtocolVersion.V5

# MQTT strings: any code point but U+0000 and surrogates (which UTF-8 cannot carry).
mqtt_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                    max_size=12)
_level = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/+#"),
                 max_size=6)
topic_names = st.lists(_level, min_size=1, max_size=4).map("/".join).filter(bool)


@st.composite
def topic_filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(st.one_of(_level, st.just("+")), min_size=1, max_size=4))
    if draw(st.booleans()):
        levels.append("#")
    plain = "/".join(levels) or "#"
    if draw(st.integers(0, 5)) == 0:
        group = draw(_level.filter(bool))
        return f"$share/{group}/{plain}"
    return plain


u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
packet_ids = st.integers(1, 0xFFFF)
binary = st.binary(max_size=24)

_FLAG_FIELDS = {"payload_format_indicator", "maximum_qos"}
_NONZERO_FIELDS = {"receive_maximum", "topic_alias", "maximum_packet_size"}


def _value_strategy(field: str, kind: _Kind) -> st.SearchStrategy[Any]:
    if kind is _Kind.BYTE:
        return st.integers(0, 1) if field in _FLAG_FIELDS else st.booleans()
    if kind is _Kind.U16:
        return st.integers(1, 0xFFFF) if field in _NONZERO_FIELDS else u16
    if kind is _Kind.U32:
        return st.integers(1, 0xFFFF_FFFF) if field in _NONZERO_FIELDS else u32
    if kind is _Kind.VARINT:
        return st.integers(1, 268_435_455)
    if kind is _Kind.UTF8:
        return mqtt_text
    if kind is _Kind.BINARY:
        return binary
    return st.tuples(mqtt_text, mqtt_text)


def properties(where: int, *, max_sub_ids: int = 3) -> st.SearchStrategy[Properties]:
    """Any properties allowed in `where` (a PacketType or WILL), per the spec table."""
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for spec in _SPECS.values():
        if where not in spec.where:
            continue
        value = _value_strategy(spec.field, spec.kind)
        if spec.field == "subscription_identifiers":
            optional[spec.field] = st.lists(value, max_size=max_sub_ids).map(tuple)
        elif spec.field == "user_properties":
            optional[spec.field] = st.lists(value, max_size=3).map(tuple)
        else:
            optional[spec.field] = value
    return st.fixed_dictionaries({}, optional=optional).map(lambda d: Properties(**d))


def _props(version: ProtocolVersion, where: int, **kw: Any) -> st.SearchStrategy[Properties]:
    return properties(where, **kw) if version is V5 else st.just(NO_PROPERTIES)


def _codes(version: ProtocolVersion, v5: frozenset[ReasonCode]) -> st.SearchStrategy[ReasonCode]:
    return st.sampled_from(sorted(v5)) if version is V5 else st.just(ReasonCode.SUCCESS)


@st.composite
def connects(draw: st.DrawFn, version: ProtocolVersion) -> Connect:
    props = draw(_props(version, PacketType.CONNECT))
    if props.authentication_data is not None and props.authentication_method is None:
        props = Properties(**{**_as_dict(props), "authentication_method": "m"})
    will = None
    if draw(st.booleans()):
        will = Will(draw(topic_names), draw(binary), draw(st.sampled_from(QoS)),
                    draw(st.booleans()), draw(_props(version, WILL)))
    username = draw(st.none() | mqtt_text)
    password = draw(st.none() | binary)
    if version is not V5 and username is None:
        password = None
    return Connect(version, draw(mqtt_text), draw(st.booleans()), draw(u16), username,
                   password, will, props)


def _as_dict(props: Properties) -> dict[str, Any]:
    return {name: getattr(props, name) for name in Properties.__dataclass_fields__}


@st.composite
def connacks(draw: st.DrawFn, version: ProtocolVersion) -> Connack:
    allowed = rc.CONNACK_CODES if version is V5 else frozenset(rc.V311_CONNACK_TO_REASON.values())
    reason = draw(st.sampled_from(sorted(allowed)))
    session_present = draw(st.booleans()) and not reason.is_error
    return Connack(session_present, reason, draw(_props(version, PacketType.CONNACK)))


@st.composite
def publishes(draw: st.DrawFn, version: ProtocolVersion) -> Publish:
    qos = draw(st.sampled_from(QoS))
    props = draw(_props(version, PacketType.PUBLISH))
    topic = draw(topic_names)
    if props.topic_alias is not None and draw(st.booleans()):
        topic = ""
    return Publish(topic, draw(st.binary(max_size=64)), qos, draw(st.booleans()),
                   bool(qos) and draw(st.booleans()), draw(packet_ids) if qos else None, props)


@st.composite
def subscriptions(draw: st.DrawFn, version: ProtocolVersion) -> Subscription:
    topic_filter = draw(topic_filters())
    qos = draw(st.sampled_from(QoS))
    if version is not V5:
        return Subscription(topic_filter, qos)
    no_local = draw(st.booleans()) and parse_shared(topic_filter) is None
    return Subscription(topic_filter, qos, no_local, draw(st.booleans()),
                        draw(st.sampled_from(RetainHandling)))


def packets(version: ProtocolVersion, *, connect: bool = True) -> st.SearchStrategy[Packet]:
    """Any packet valid in `version` (but CONNECT if `connect` is false)."""
    v = version
    pt = PacketType
    suback_codes = rc.SUBACK_CODES if v is V5 else rc.V311_SUBACK_CODES
    choices: list[st.SearchStrategy[Any]] = [
        connects(v),
        connacks(v),
        publishes(v),
        st.builds(Puback, packet_ids, _codes(v, rc.PUBACK_CODES), _props(v, pt.PUBACK)),
        st.builds(Pubrec, packet_ids, _codes(v, rc.PUBREC_CODES), _props(v, pt.PUBREC)),
        st.builds(Pubrel, packet_ids, _codes(v, rc.PUBREL_CODES), _props(v, pt.PUBREL)),
        st.builds(Pubcomp, packet_ids, _codes(v, rc.PUBCOMP_CODES), _props(v, pt.PUBCOMP)),
        st.builds(Subscribe, packet_ids,
                  st.lists(subscriptions(v), min_size=1, max_size=4).map(tuple),
                  _props(v, pt.SUBSCRIBE, max_sub_ids=1)),
        st.builds(Suback, packet_ids,
                  st.lists(st.sampled_from(sorted(suback_codes)), min_size=1,
                           max_size=4).map(tuple),
                  _props(v, pt.SUBACK)),
        st.builds(Unsubscribe, packet_ids,
                  st.lists(topic_filters(), min_size=1, max_size=4).map(tuple),
                  _props(v, pt.UNSUBSCRIBE)),
        st.builds(Unsuback, packet_ids,
                  st.lists(st.sampled_from(sorted(rc.UNSUBACK_CODES)), min_size=1,
                           max_size=4).map(tuple) if v is V5 else st.just(()),
                  _props(v, pt.UNSUBACK)),
        st.just(Pingreq()),
        st.just(Pingresp()),
        st.builds(Disconnect, _codes(v, rc.DISCONNECT_CODES), _props(v, pt.DISCONNECT)),
    ]
    if not connect:
        choices.pop(0)
    if v is V5:
        choices.append(st.builds(Auth, st.sampled_from(sorted(rc.AUTH_CODES)),
                                 properties(pt.AUTH)))
    return st.one_of(choices)


versions = st.sampled_from(ProtocolVersion)

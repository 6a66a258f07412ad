"""Payload encodings and stream schemas: JSON, CBOR and MessagePack decode to the same JSON
document; anything else -- random bytes, tags, extension types, bombs, unknown content
types, reports that break their stream's schema -- is refused with its reason code and
never raises anything else. Then the store: a CBOR report is kept as JSON, a schema
violation is refused with the field; and the Mosquitto ingest worker, which decodes by the
MQTT 5 Content Type and acknowledges what it refuses."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import cbor2
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devicetrust.domain import FixedClock
from devicetrust.domain.errors import DeviceTrustError, InvalidInput
from devicetrust.domain.ids import PhysicalId
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.ingest import InboundMessage, MessageKind, MessageStore, Outcome
from devicetrust.ingest.encodings import (
    REASONS,
    DecodeLimits,
    Encoding,
    decode_payload,
    encoding_of,
)
from devicetrust.ingest.schemas import (
    DEFAULT_SCHEMAS,
    FieldKind,
    FieldRule,
    StreamSchema,
    check_document,
)
from devicetrust.store.database import Database

from .clients import DeviceClient, eventually
from .conftest import Broker, WorkerFactory

D, T = MessageKind.DIAGNOSTICS, MessageKind.TELEMETRY
CBOR, MSGPACK, JSON = "application/cbor", "application/msgpack", "application/json"
ENCODERS: dict[str, Callable[[Any], bytes]] = {
    JSON: lambda d: json.dumps(d).encode(),
    CBOR: cbor2.dumps,
    MSGPACK: msgpack.packb,
}
DEFAULT = DecodeLimits()
ROOMY = DecodeLimits(max_bytes=1 << 20, max_depth=64, max_values=100_000)

# ---- JSON-compatible documents ----------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what all three encode
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=5),
    max_leaves=30,
)
documents = st.dictionaries(st.text(max_size=8), values, max_size=8)


def refusal(payload: bytes, content_type: str | None,
            limits: DecodeLimits = DEFAULT) -> str:
    with pytest.raises(DeviceTrustError) as caught:
        decode_payload(payload, content_type, limits)
    return caught.value.code


@pytest.mark.parametrize("content_type", [JSON, CBOR, MSGPACK])
@given(document=documents)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_every_json_document_round_trips(content_type: str, document: dict[str, Any]) -> None:
    encoded = ENCODERS[content_type](document)
    assert decode_payload(encoded, content_type, ROOMY) == document


@given(document=documents)
def test_the_three_encodings_give_the_same_document(document: dict[str, Any]) -> None:
    decoded = [decode_payload(ENCODERS[ct](document), ct, ROOMY) for ct in (JSON, CBOR, MSGPACK)]
    assert decoded[0] == decoded[1] == decoded[2]
    json.dumps(decoded[1], allow_nan=False)  # storable as JSON as it is


@pytest.mark.parametrize("content_type", [None, CBOR, MSGPACK])
@given(data=st.binary(max_size=256))
@settings(max_examples=300)
def test_random_bytes_decode_or_are_refused(content_type: str | None, data: bytes) -> None:
    try:
        value = decode_payload(data, content_type)
    except DeviceTrustError as exc:
        assert exc.code in REASONS
    else:
        assert isinstance(value, dict)
        json.dumps(value, allow_nan=False)


@pytest.mark.parametrize("content_type", [JSON, CBOR, MSGPACK])
@given(document=documents, cut=st.integers(min_value=0), flip=st.integers(min_value=0, max_value=255))
@settings(max_examples=150)
def test_damaged_documents_decode_or_are_refused(
    content_type: str, document: dict[str, Any], cut: int, flip: int
) -> None:
    """Valid encodings with one byte changed or the tail cut: the decoder's deeper paths."""
    encoded = bytearray(ENCODERS[content_type](document))
    at = cut % len(encoded)
    encoded[at] ^= flip
    for damaged in (bytes(encoded), bytes(encoded[:at])):
        try:
            value = decode_payload(damaged, content_type)
        except DeviceTrustError as exc:
            assert exc.code in REASONS
        else:
            json.dumps(value, allow_nan=False)


# ---- bombs and values JSON cannot carry ------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [
        pytest.param(b"[" * 60_000, None, id="json-brackets"),
        pytest.param(b'{"a":' * 10_000 + b"1" + b"}" * 10_000, None, id="json-objects"),
        pytest.param(b"\x81" * 60_000, CBOR, id="cbor-arrays"),
        pytest.param(b"\xa1\x61a" * 20_000 + b"\x01", CBOR, id="cbor-maps"),
        pytest.param(b"\x91" * 60_000, MSGPACK, id="msgpack-arrays"),
    ],
)
def test_nesting_bombs_are_refused(payload: bytes, content_type: str | None) -> None:
    assert refusal(payload, content_type) == "ingest.payload_too_deep"


@pytest.mark.parametrize(
    ("header", "content_type"),
    [
        ("bb7fffffffffffffff", CBOR),  # map of 2**63 pairs
        ("9bffffffffffffffff", CBOR),  # array of 2**64 - 1 items
        ("a1615b5b7fffffffffffffff", CBOR),  # {"[": <byte string of 2**63 bytes>}
        ("a161617b7fffffffffffffff", CBOR),  # {"a": <text of 2**63 bytes>}
        ("dfffffffff", MSGPACK),  # map32 of 2**32 - 1 pairs
        ("ddffffffff", MSGPACK),  # array32
        ("81a161dbffffffff", MSGPACK),  # {"a": <str32 of 2**32 - 1 bytes>}
        ("81a161c6ffffffff", MSGPACK),  # {"a": <bin32>}
    ],
)
def test_huge_declared_lengths_are_refused_without_allocating(
    header: str, content_type: str
) -> None:
    assert refusal(bytes.fromhex(header), content_type) == "ingest.payload_malformed"


@pytest.mark.parametrize("content_type", [CBOR, MSGPACK])
def test_too_many_values_are_refused(content_type: str) -> None:
    payload = ENCODERS[content_type]({"a": [None] * 20_000})
    assert refusal(payload, content_type) == "ingest.payload_too_many_values"


def test_the_size_cap_holds_before_decoding() -> None:
    big = cbor2.dumps({"a": "x" * 70_000})
    assert refusal(big, CBOR) == "ingest.payload_too_large"


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [
        pytest.param(cbor2.dumps({"t": cbor2.CBORTag(1, 1_700_000_000)}), CBOR, id="date-tag"),
        pytest.param(cbor2.dumps({"n": 2**70}), CBOR, id="bignum-tag"),
        pytest.param(bytes.fromhex("a16161d81c80"), CBOR, id="shared-ref-tag"),
        pytest.param(cbor2.dumps({"t": cbor2.CBORTag(40_000, "x")}), CBOR, id="unknown-tag"),
        pytest.param(cbor2.dumps({"b": b"\x00"}), CBOR, id="byte-string"),
        pytest.param(cbor2.dumps({"u": cbor2.undefined}), CBOR, id="undefined"),
        pytest.param(cbor2.dumps({"s": cbor2.CBORSimpleValue(99)}), CBOR, id="simple-value"),
        pytest.param(cbor2.dumps({"f": math.inf}), CBOR, id="cbor-infinity"),
        pytest.param(cbor2.dumps({b"k": 1}), CBOR, id="byte-string-key"),
        pytest.param(msgpack.packb({"e": msgpack.ExtType(1, b"x")}), MSGPACK, id="ext-type"),
        pytest.param(msgpack.packb({"t": msgpack.Timestamp(1, 0)}), MSGPACK, id="timestamp"),
        pytest.param(msgpack.packb({"b": b"\x00"}), MSGPACK, id="bin"),
        pytest.param(msgpack.packb({"f": math.nan}), MSGPACK, id="msgpack-nan"),
        pytest.param(b'{"f": 1e400}', None, id="json-overflow"),
    ],
)
def test_values_json_cannot_carry_are_refused(payload: bytes, content_type: str | None) -> None:
    assert refusal(payload, content_type) == "ingest.payload_unsupported_value"


@pytest.mark.parametrize(
    ("payload", "content_type", "reason"),
    [
        (cbor2.dumps([1, 2]), CBOR, "ingest.payload_not_object"),
        (msgpack.packb("text"), MSGPACK, "ingest.payload_not_object"),
        (b"[1]", None, "ingest.payload_not_object"),
        (cbor2.dumps({"a": 1}) + b"\x00", CBOR, "ingest.payload_malformed"),
        (msgpack.packb({"a": 1}) + b"\x00", MSGPACK, "ingest.payload_malformed"),
        (bytes.fromhex("a2616101616102"), CBOR, "ingest.payload_malformed"),  # key twice
        (msgpack.packb({1: 2}), MSGPACK, "ingest.payload_malformed"),  # non-string key
        (b'{"x": NaN}', None, "ingest.payload_not_json"),
        (b"\xff{}", None, "ingest.payload_not_json"),
        (b"{}", "text/plain", "ingest.unsupported_content_type"),
        (b"{}", "", "ingest.unsupported_content_type"),
    ],
)
def test_other_refusals(payload: bytes, content_type: str | None, reason: str) -> None:
    assert refusal(payload, content_type) == reason


@pytest.mark.parametrize(
    ("content_type", "encoding"),
    [
        (None, Encoding.JSON),
        ("application/json; charset=utf-8", Encoding.JSON),
        ("Application/CBOR", Encoding.CBOR),
        ("application/msgpack", Encoding.MSGPACK),
        ("application/x-msgpack", Encoding.MSGPACK),
    ],
)
def test_content_types(content_type: str | None, encoding: Encoding) -> None:
    assert encoding_of(content_type) is encoding


# ---- schemas ---------------------------------------------------------------------------------


def violation(kind: MessageKind, document: dict[str, Any],
              schemas: dict[MessageKind, StreamSchema] | None = None) -> str:
    with pytest.raises(InvalidInput) as caught:
        check_document(kind, document, schemas if schemas is not None else DEFAULT_SCHEMAS)
    assert caught.value.code == "ingest.schema_violation"
    return caught.value.message


@pytest.mark.parametrize(
    ("kind", "document"),
    [
        (T, {}),
        (T, {"ts": 1767225600, "torque": [1.5] * 32, "rpm": 1200, "mode": "auto", "ok": True}),
        (T, {"ts": "2026-01-01T00:00:00Z", "currents": [0.1, 0.2]}),
        (D, {"ts": "2026-01-01T08:00:00+01:00", "parts_per_hour": 118, "state": "lost"}),
        (D, {"ts": 0.5}),
    ],
)
def test_default_schemas_accept(kind: MessageKind, document: dict[str, Any]) -> None:
    check_document(kind, document)


@pytest.mark.parametrize(
    ("kind", "document", "message"),
    [
        (T, {"torque": [1.0] * 33}, "torque: more than 32 items"),
        (T, {"torque": [1.0, "2"]}, "torque: not a list of numbers"),
        (T, {"torque": [True]}, "torque: not a list of numbers"),
        (T, {"torque": 3}, "torque: not a list of numbers"),
        (T, {"ts": "yesterday"}, "ts: not an ISO 8601 time"),
        (T, {"ts": -1}, "ts: a negative epoch time"),
        (D, {"ts": None}, "ts: not a time (ISO 8601 string or epoch seconds)"),
        (D, {"error": {"code": 3}}, "error: not a measurement"),
        (D, {"log": "x" * 2000}, "log: longer than 1024 characters"),
        (D, {"samples": [1] * 257}, "samples: more than 256 items"),
    ],
)
def test_default_schemas_refuse_with_the_field(
    kind: MessageKind, document: dict[str, Any], message: str
) -> None:
    assert violation(kind, document).startswith(message)


def test_an_operator_schema_replaces_the_default() -> None:
    schema = StreamSchema.parse({
        "fields": {"ts": "timestamp", "rpm": "integer", "torque": "number[6]", "alarm": "bool"},
        "required": ["ts", "rpm"],
        "other_fields": "refuse",
    })
    assert schema.fields["torque"] == FieldRule(FieldKind.NUMBER_LIST, max_items=6)
    schemas = {T: schema}
    check_document(T, {"ts": 1, "rpm": 3, "torque": [1, 2], "alarm": False}, schemas)
    assert violation(T, {"ts": 1}, schemas) == "rpm: missing"
    assert violation(T, {"ts": 1, "rpm": 1.5}, schemas) == "rpm: not an integer"
    assert violation(T, {"ts": 1, "rpm": 1, "extra": 1}, schemas) == "extra: not an allowed field"
    assert violation(T, {"ts": 1, "rpm": 1, "torque": [0] * 7}, schemas).startswith("torque")
    check_document(D, {"nested": {"free": "form"}}, schemas)  # a stream without a schema
    free = {D: StreamSchema.parse({"other_fields": "any"})}
    check_document(D, {"nested": {"deep": [{"x": None}]}}, free)


@pytest.mark.parametrize(
    "table",
    [
        {"fields": {"a": "decimal"}},
        {"fields": {"a": "number[]"}},
        {"fields": {"a": 3}},
        {"fields": {"a": "number"}, "required": ["b"]},
        {"other_fields": 1},
        {"strict": True},
    ],
)
def test_a_bad_operator_schema_is_refused(table: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as caught:
        StreamSchema.parse(table)
    assert caught.value.code == "ingest.bad_schema"


# ---- through the store ---------------------------------------------------------------------


@pytest.fixture
def store(db: Database, clock: FixedClock) -> MessageStore:
    return MessageStore(db, clock)


def test_the_store_keeps_binary_reports_as_json(
    store: MessageStore, identity: IdentityService, clock: FixedClock
) -> None:
    pid = PhysicalId(identity.register(UnitSpec("RA-7", {}), actor="t").physical_id)
    body = {"torque": [1.5, 2.5], "rpm": 900}
    results = store.store_batch([
        InboundMessage(pid, T, cbor2.dumps(body), clock.now(), content_type=CBOR),
        InboundMessage(pid, T, msgpack.packb({"rpm": 901}), clock.now(), content_type=MSGPACK),
        InboundMessage(pid, T, cbor2.dumps({"torque": [0.0] * 33}), clock.now(),
                       content_type=CBOR),
        InboundMessage(pid, T, cbor2.dumps(body), clock.now()),  # no content type: JSON
    ])
    assert [r.outcome for r in results] == [
        Outcome.STORED, Outcome.STORED, Outcome.REFUSED, Outcome.REFUSED
    ]
    assert results[2].reason == "ingest.schema_violation"
    assert results[2].detail == "torque: more than 32 items"
    assert results[3].reason == "ingest.payload_not_json"
    payloads = [m.payload for m in store.telemetry_of(pid)]
    assert sorted(payloads, key=json.dumps) == sorted([body, {"rpm": 901}], key=json.dumps)


def test_a_store_takes_its_schemas(
    db: Database, identity: IdentityService, clock: FixedClock
) -> None:
    strict = MessageStore(db, clock, schemas={T: StreamSchema.parse({
        "fields": {"rpm": "number"}, "required": ["rpm"], "other_fields": "refuse"})})
    pid = PhysicalId(identity.register(UnitSpec("RA-7", {}), actor="t").physical_id)
    ok, bad = strict.store_batch([
        InboundMessage(pid, T, b'{"rpm": 1}', clock.now()),
        InboundMessage(pid, T, b'{"torque": [1]}', clock.now()),
    ])
    assert ok.outcome is Outcome.STORED
    assert (bad.outcome, bad.reason, bad.detail) == (
        Outcome.REFUSED, "ingest.schema_violation", "rpm: missing")


# ---- through Mosquitto and `devicetrust ingest` --------------------------------------------


def test_the_ingest_worker_decodes_by_content_type_and_acknowledges_refusals(
    broker: Broker, workers: WorkerFactory, db: Database, clock: FixedClock
) -> None:
    worker = workers()
    device = broker.device("line-03-left-welding-12")
    me = DeviceClient(broker.port, broker.cafile, device.cert, device.key, "d").start()
    topic = f"devices/{device.physical_id}/telemetry"

    def send(payload: bytes, content_type: str) -> None:
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = content_type
        me.client.publish(topic, payload, qos=1, properties=props).wait_for_publish()

    try:
        send(cbor2.dumps({"torque": [1.5, 2.5]}), CBOR)
        send(msgpack.packb({"rpm": 900}), "application/x-msgpack")
        send(b"\xa1\x61", CBOR)  # truncated
        send(cbor2.dumps({"torque": [0] * 40}), CBOR)
        assert eventually(lambda: worker.stats.stored + worker.stats.refused == 4)
    finally:
        me.stop()
    assert worker.stats.refusals == {
        "ingest.payload_malformed": 1, "ingest.schema_violation": 1
    }
    payloads = [m.payload for m in MessageStore(db, clock).telemetry_of(device.physical_id)]
    assert sorted(payloads, key=json.dumps) == [{"rpm": 900}, {"torque": [1.5, 2.5]}]

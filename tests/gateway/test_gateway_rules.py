"""The gateway's pure decisions, without a socket: the topic ACL (exhaustive and property
tested), credential selection and refusal codes, the CONNECT checks and negotiation, the
group-commit queue and the session registry; and the package's public surface."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

import devicetrust.gateway as gateway_package
from devicetrust.deviceauth import (
    AuthenticatedDevice,
    AuthMethod,
    CertificateNotAccepted,
    TokenInvalid,
    UnitSuspended,
)
from devicetrust.domain import LogicalName, PhysicalId
from devicetrust.gateway import (
    ACCEPTED,
    DeviceMessage,
    GatewayConfig,
    MessageKind,
    SinkResult,
    TopicLayout,
    rules,
)
from devicetrust.gateway.codec import Connect, ProtocolVersion, Publish, QoS, ReasonCode, Will
from devicetrust.gateway.codec import Properties as MqttProperties
from devicetrust.gateway.credentials import Presented, refusal_code, select_credential
from devicetrust.gateway.sessions import SessionRegistry
from devicetrust.gateway.store_queue import StoreQueue

PID = PhysicalId("c2c38155-b0d2-48b6-82fd-22fe3b316224")
OTHER = PhysicalId("0b5ce8a3-53c4-4b8e-9a55-6c3f3d52a1e0")
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
LAYOUT = TopicLayout()
CONFIG = GatewayConfig(token_audience="mqtt.example.com", max_keep_alive=120,
                       max_session_expiry=600, max_inflight_feedback=8)
V5, V311 = ProtocolVersion.V5, ProtocolVersion.V311


def device(logical_name: str | None = "line-03-left-welding-12") -> AuthenticatedDevice:
    return AuthenticatedDevice(PID, LogicalName(logical_name) if logical_name else None,
                               AuthMethod.MTLS, "01", NOW + timedelta(days=1), NOW)


# ---- topics ---------------------------------------------------------------------------------


def test_a_device_publishes_only_to_its_own_two_topics() -> None:
    assert LAYOUT.publish_kind(PID, f"devices/{PID}/diagnostics") is MessageKind.DIAGNOSTICS
    assert LAYOUT.publish_kind(PID, f"devices/{PID}/telemetry") is MessageKind.TELEMETRY
    for topic in (f"devices/{OTHER}/telemetry", f"devices/{PID}/feedback",
                  f"devices/{PID}/telemetry/x", f"devices/{PID.upper()}/telemetry",
                  f"devices//{PID}/telemetry", f"/devices/{PID}/telemetry", "$SYS/broker",
                  f"$share/g/devices/{PID}/telemetry", f"other/{PID}/telemetry", ""):
        assert LAYOUT.publish_kind(PID, topic) is None, topic


def test_a_device_subscribes_only_to_its_own_feedback() -> None:
    assert LAYOUT.may_subscribe(PID, f"devices/{PID}/feedback")
    for topic_filter in ("#", "+/+/+", "devices/#", "devices/+/feedback", f"devices/{PID}/#",
                         f"devices/{PID}/+", "$SYS/#", f"$share/g/devices/{PID}/feedback",
                         f"devices/{OTHER}/feedback", f"devices/{PID}/telemetry"):
        assert not LAYOUT.may_subscribe(PID, topic_filter), topic_filter


@given(st.text(max_size=80))
def test_no_other_string_is_the_feedback_topic_or_a_publish_topic(text: str) -> None:
    allowed = {f"devices/{PID}/{leaf}" for leaf in ("diagnostics", "telemetry", "feedback")}
    if text not in allowed:
        assert LAYOUT.publish_kind(PID, text) is None
        assert not LAYOUT.may_subscribe(PID, text)


def test_a_configured_prefix_is_used_and_checked() -> None:
    assert TopicLayout("plant/7").feedback(PID) == f"plant/7/{PID}/feedback"
    for bad in ("", "$SYS", "a/+", "a/#", "a//b", "/a"):
        with pytest.raises(ValueError):
            TopicLayout(bad)


# ---- credentials ---------------------------------------------------------------------------------


def connect(**fields: object) -> Connect:
    values: dict[str, object] = {"protocol_version": V5, "client_id": PID}
    values.update(fields)
    return Connect(**values)  # type: ignore[arg-type]


def test_credential_selection() -> None:
    assert select_credential(connect(), b"DER", None) == Presented(AuthMethod.MTLS, b"DER")
    # With a certificate, user name and password are ignored.
    assert select_credential(connect(username="jwt", password=b"x"), b"DER", "a") == Presented(
        AuthMethod.MTLS, b"DER")
    assert select_credential(connect(), None, "a") is ReasonCode.NOT_AUTHORIZED
    assert select_credential(connect(username="hmac-token", password=b"t"), None, "a") == (
        Presented(AuthMethod.HMAC_TOKEN, token="t"))
    assert select_credential(connect(username="jwt", password=b"t"), None, "a") == (
        Presented(AuthMethod.JWT, token="t"))
    bad = ReasonCode.BAD_USER_NAME_OR_PASSWORD
    assert select_credential(connect(username="mtls", password=b"t"), None, "a") is bad
    assert select_credential(connect(username=None, password=b"t"), None, "a") is bad
    assert select_credential(connect(username="jwt", password=b"\xff"), None, "a") is bad
    assert select_credential(connect(username="jwt", password=b"t" * 9000), None, "a") is bad
    # No audience configured: tokens are refused, whatever they hold (fail closed).
    assert select_credential(connect(username="jwt", password=b"t"), None, None) is bad


def test_refusal_codes_tell_only_what_failed_in_general() -> None:
    token = Presented(AuthMethod.HMAC_TOKEN, token="t")
    cert = Presented(AuthMethod.MTLS, certificate=b"DER")
    assert refusal_code(token, TokenInvalid("bad mac")) is ReasonCode.BAD_USER_NAME_OR_PASSWORD
    assert refusal_code(token, UnitSuspended("suspended")) is ReasonCode.NOT_AUTHORIZED
    revoked = CertificateNotAccepted("auth.cert_revoked", "revoked")
    assert refusal_code(cert, revoked) is ReasonCode.NOT_AUTHORIZED


# ---- CONNECT -------------------------------------------------------------------------------------


def test_prechecks_before_any_database_work() -> None:
    assert rules.precheck(connect(), CONFIG, 1) is None
    assert rules.precheck(connect(), CONFIG, CONFIG.max_connections + 1) is (
        ReasonCode.QUOTA_EXCEEDED)
    enhanced = connect(properties=MqttProperties(authentication_method="SCRAM-SHA-1"))
    assert rules.precheck(enhanced, CONFIG, 1) is ReasonCode.BAD_AUTHENTICATION_METHOD
    will = f"devices/{PID}/diagnostics"
    assert rules.precheck(connect(will=Will(will, b"", QoS.EXACTLY_ONCE)), CONFIG, 1) is (
        ReasonCode.QOS_NOT_SUPPORTED)
    assert rules.precheck(connect(will=Will(will, b"", retain=True)), CONFIG, 1) is (
        ReasonCode.RETAIN_NOT_SUPPORTED)


def test_identity_checks_after_authentication() -> None:
    assert rules.check_identity(connect(), device(), LAYOUT) is None
    assert rules.check_identity(connect(client_id=OTHER), device(), LAYOUT) is (
        ReasonCode.CLIENT_IDENTIFIER_NOT_VALID)
    assert rules.check_identity(connect(client_id=""), device(), LAYOUT) is None  # assigned
    v311_keep = connect(protocol_version=V311, client_id="", clean_start=False)
    assert rules.check_identity(v311_keep, device(), LAYOUT) is (
        ReasonCode.CLIENT_IDENTIFIER_NOT_VALID)
    foreign_will = connect(will=Will(f"devices/{OTHER}/diagnostics", b""))
    assert rules.check_identity(foreign_will, device(), LAYOUT) is ReasonCode.NOT_AUTHORIZED
    # Diagnostics belong to a logical identity: a unit holding none has nowhere to put them.
    own_will = connect(will=Will(f"devices/{PID}/diagnostics", b""))
    assert rules.check_identity(own_will, device(), LAYOUT) is None
    assert rules.check_identity(own_will, device(None), LAYOUT) is ReasonCode.NOT_AUTHORIZED


def test_negotiation_caps_what_the_client_asks() -> None:
    asked = connect(keep_alive=0, clean_start=False, client_id="",
                    properties=MqttProperties(session_expiry_interval=rules.NEVER_EXPIRES,
                                              receive_maximum=3, maximum_packet_size=1000))
    terms = rules.negotiate(asked, device(), CONFIG)
    assert terms == rules.Terms(keep_alive=120, session_expiry=600, send_window=3,
                                client_max_packet=1000, assigned_client_id=PID)
    props = rules.connack_properties(asked, terms, CONFIG)
    assert (props.server_keep_alive, props.session_expiry_interval,
            props.assigned_client_identifier, props.maximum_qos) == (120, 600, PID, 1)
    polite = connect(keep_alive=60)
    terms = rules.negotiate(polite, device(), CONFIG)
    assert (terms.keep_alive, terms.session_expiry, terms.send_window) == (60, 0, 8)
    assert rules.connack_properties(polite, terms, CONFIG).server_keep_alive is None
    v311 = rules.negotiate(connect(protocol_version=V311, clean_start=False), device(), CONFIG)
    assert v311.session_expiry == 600


def test_publish_admission() -> None:
    own = f"devices/{PID}/telemetry"
    diag = f"devices/{PID}/diagnostics"
    dev = rules.publish_topics(LAYOUT, device())
    unbound = rules.publish_topics(LAYOUT, device(None))  # holds no logical identity
    assert dev == {own: MessageKind.TELEMETRY, diag: MessageKind.DIAGNOSTICS}
    assert unbound == {own: MessageKind.TELEMETRY}
    assert rules.admit_publish(Publish(own, b"{}"), V5, dev) is MessageKind.TELEMETRY
    assert rules.admit_publish(Publish(diag, b"{}"), V311, dev) is (
        MessageKind.DIAGNOSTICS)
    refusal = rules.Refusal
    assert rules.admit_publish(Publish(diag, b"{}"), V5, unbound) == refusal(
        ReasonCode.NOT_AUTHORIZED, close=False)
    foreign = Publish(f"devices/{OTHER}/telemetry", b"{}", QoS.AT_LEAST_ONCE, packet_id=1)
    assert rules.admit_publish(foreign, V5, dev) == refusal(
        ReasonCode.NOT_AUTHORIZED, close=False)
    assert rules.admit_publish(foreign, V311, dev) == refusal(
        ReasonCode.NOT_AUTHORIZED, close=True)
    cases = [
        (Publish(own, b"", QoS.EXACTLY_ONCE, packet_id=1), ReasonCode.QOS_NOT_SUPPORTED, True),
        (Publish(own, b"", retain=True), ReasonCode.RETAIN_NOT_SUPPORTED, True),
        (Publish(own, b"", properties=MqttProperties(topic_alias=1)),
         ReasonCode.TOPIC_ALIAS_INVALID, True),
        (Publish(own, b"", properties=MqttProperties(subscription_identifiers=(1,))),
         ReasonCode.PROTOCOL_ERROR, True),
        (Publish(own, b"\xff", properties=MqttProperties(payload_format_indicator=1)),
         ReasonCode.PAYLOAD_FORMAT_INVALID, False),
    ]
    for publish, reason, close in cases:
        assert rules.admit_publish(publish, V5, dev) == refusal(reason, close), publish
    # 3.1.1 knows no "retain not available": the flag is ignored, the message stored.
    assert rules.admit_publish(Publish(own, b"{}", retain=True), V311, dev) is (
        MessageKind.TELEMETRY)


def test_config_refuses_nonsense() -> None:
    for bad in ({"port": 70000}, {"receive_maximum": 0}, {"max_packet_size": 10},
                {"token_audience": ""}, {"connect_timeout": 0}, {"auth_concurrency": 0}):
        with pytest.raises(ValueError):
            GatewayConfig(**bad)  # type: ignore[arg-type]


# ---- group commit -------------------------------------------------------------------------------


class ListSink:
    def __init__(self, fail_first: int = 0) -> None:
        self.batches: list[list[str | None]] = []
        self._fail = fail_first

    async def store(self, messages: Sequence[DeviceMessage]) -> list[SinkResult]:
        await asyncio.sleep(0)
        if self._fail:
            self._fail -= 1
            raise OSError("database unavailable")
        self.batches.append([m.message_id for m in messages])
        return [ACCEPTED] * len(messages)


def message(n: int) -> DeviceMessage:
    return DeviceMessage(str(n), MessageKind.TELEMETRY, PID, None, b"{}", NOW)


def test_store_queue_batches_in_order_and_fails_whole_batches() -> None:
    async def scenario() -> tuple[list[list[str | None]], list[bool]]:
        sink = ListSink(fail_first=1)
        queue = StoreQueue(sink, max_batch=3, max_pending=100)
        flusher = asyncio.create_task(queue.run())
        first = [queue.submit(message(n)) for n in range(2)]
        await asyncio.gather(*first, return_exceptions=True)
        rest = [queue.submit(message(n)) for n in range(2, 9)]
        await asyncio.gather(*rest)
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)
        return sink.batches, [f.exception() is None for f in first + rest]

    batches, succeeded = asyncio.run(scenario())
    assert succeeded == [False, False] + [True] * 7  # the failed batch is never acknowledged
    assert [m for batch in batches for m in batch] == [str(n) for n in range(2, 9)]
    assert all(len(batch) <= 3 for batch in batches)


# ---- sessions -----------------------------------------------------------------------------------


class FakeLive:
    def __init__(self) -> None:
        self.closed: list[tuple[ReasonCode, bool]] = []

    def disconnect(self, reason: ReasonCode, *, store_will: bool) -> None:
        self.closed.append((reason, store_will))

    def pump_feedback(self) -> None:
        return None


def test_registry_takeover_persistence_and_kick() -> None:
    async def scenario() -> None:
        registry = SessionRegistry()
        first, second, third = FakeLive(), FakeLive(), FakeLive()
        session, present, took_over = registry.attach(PID, first, clean_start=False, expiry=60)
        assert (present, took_over) == (False, False)
        session.subscription = QoS.AT_LEAST_ONCE
        kept, present, took_over = registry.attach(PID, second, clean_start=False, expiry=60)
        assert (kept is session, present, took_over) == (True, True, True)
        assert first.closed == [(ReasonCode.SESSION_TAKEN_OVER, True)]
        registry.detach(PID, first)  # the old connection ending changes nothing
        assert registry.live(PID) is second
        registry.detach(PID, second)
        assert registry.session(PID) is session  # persistent: kept after the connection
        fresh, present, _ = registry.attach(PID, third, clean_start=True, expiry=0)
        assert (fresh is session, present, fresh.subscription) == (False, False, None)
        assert registry.kick(PID, ReasonCode.NOT_AUTHORIZED)
        assert third.closed == [(ReasonCode.NOT_AUTHORIZED, False)]  # no will on a kick
        assert registry.session(PID) is None and registry.live(PID) is None
        assert not registry.kick(PID, ReasonCode.NOT_AUTHORIZED)

    asyncio.run(scenario())


def test_public_surface() -> None:
    assert sorted(gateway_package.__all__) == sorted(
        name for name in dir(gateway_package)
        if not name.startswith("_") and name not in {
            "acl", "codec", "config", "connecting", "connection", "credentials", "environment",
            "feedback", "inbound", "ingest_sink", "live_revocation", "message_quota", "metrics",
            "publish_outcome", "refusal_audit", "rules", "runner", "server",
            "server_certificate", "session_store", "sessions", "sink", "store_queue"})

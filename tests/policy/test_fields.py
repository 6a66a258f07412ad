"""Parsing and bounds of every policy field, and the strictness order (a pure core, tested
without fixtures; hypothesis for the order's laws)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devicetrust.policy import (
    BASELINE,
    AuthMethod,
    InvalidPolicy,
    PolicyField,
    TlsVersion,
    parse_duration,
    parse_expiry,
    parse_field,
    parse_scope,
    parse_value,
    policy_json,
    value_json,
)
from devicetrust.policy.fields import stricter_or_equal, weakened_fields

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_values_parse_from_cli_text_and_json() -> None:
    assert parse_value(PolicyField.AUTH_METHODS, "mtls, JWT") == {AuthMethod.MTLS, AuthMethod.JWT}
    assert parse_value(PolicyField.AUTH_METHODS, ["hmac-token"]) == {AuthMethod.HMAC_TOKEN}
    assert parse_value(PolicyField.MIN_TLS_VERSION, "TLSv1.3") is TlsVersion.TLS_1_3
    assert parse_value(PolicyField.MAX_CERTIFICATE_LIFETIME, "12h") == timedelta(hours=12)
    assert parse_value(PolicyField.MAX_CERTIFICATE_LIFETIME, 3600) == timedelta(hours=1)
    assert parse_value(PolicyField.MAX_TOKEN_LIFETIME, "PT30M") == timedelta(minutes=30)
    assert parse_value(PolicyField.CLOCK_SKEW, "0") == timedelta(0)
    assert parse_value(PolicyField.RSA_MIN_BITS, "4096") == 4096
    assert parse_value(PolicyField.HARDWARE_KEY_REQUIRED, "false") is False
    assert parse_value(PolicyField.ALLOWED_NETWORKS, "10.3.0.0/16,fd00::/8") == (
        ip_network("10.3.0.0/16"),
        ip_network("fd00::/8"),
    )
    assert parse_field("max-certificate-lifetime") is PolicyField.MAX_CERTIFICATE_LIFETIME


def test_baseline_json_round_trips() -> None:
    as_json = policy_json(BASELINE)
    for field in PolicyField:
        assert parse_value(field, as_json[field.value]) == BASELINE.value(field)


@pytest.mark.parametrize(
    ("field", "raw", "code"),
    [
        (PolicyField.AUTH_METHODS, "", "policy.invalid_value"),
        (PolicyField.AUTH_METHODS, [], "policy.empty_set"),
        (PolicyField.AUTH_METHODS, "password", "policy.invalid_value"),
        (PolicyField.AUTH_METHODS, 7, "policy.invalid_value"),
        (PolicyField.MIN_TLS_VERSION, "1.1", "policy.out_of_range"),
        (PolicyField.MIN_TLS_VERSION, "ssl3", "policy.invalid_value"),
        (PolicyField.TLS13_CIPHER_SUITES, "TLS_RSA_WITH_RC4_128_SHA", "policy.invalid_value"),
        (PolicyField.MAX_CERTIFICATE_LIFETIME, "1m", "policy.out_of_range"),
        (PolicyField.MAX_CERTIFICATE_LIFETIME, "91d", "policy.out_of_range"),
        (PolicyField.MAX_CERTIFICATE_LIFETIME, "forever", "policy.invalid_duration"),
        (PolicyField.MAX_CERTIFICATE_LIFETIME, -5, "policy.invalid_duration"),
        (PolicyField.MAX_TOKEN_LIFETIME, "2d", "policy.out_of_range"),
        (PolicyField.CLOCK_SKEW, "2h", "policy.out_of_range"),
        (PolicyField.KEY_ALGORITHMS, "dsa", "policy.invalid_value"),
        (PolicyField.RSA_MIN_BITS, 1024, "policy.out_of_range"),
        (PolicyField.RSA_MIN_BITS, True, "policy.invalid_value"),
        (PolicyField.RSA_MIN_BITS, "lots", "policy.invalid_value"),
        (PolicyField.HARDWARE_KEY_REQUIRED, "maybe", "policy.invalid_value"),
        (PolicyField.ALLOWED_NETWORKS, "10.0.0.1/8", "policy.invalid_value"),
        (PolicyField.ALLOWED_NETWORKS, "not-a-net", "policy.invalid_value"),
        (PolicyField.CONNECTIONS_PER_MINUTE, 0, "policy.out_of_range"),
        (PolicyField.MESSAGES_PER_SECOND, 10**9, "policy.out_of_range"),
    ],
)
def test_bad_values_are_refused_with_a_code_naming_the_field(
    field: PolicyField, raw: object, code: str
) -> None:
    with pytest.raises(InvalidPolicy) as refused:
        parse_value(field, raw)
    assert refused.value.code == code
    assert refused.value.status == 400
    if code != "policy.invalid_duration":
        assert field.value in refused.value.message


def test_unknown_field_and_bad_scopes() -> None:
    with pytest.raises(InvalidPolicy) as unknown:
        parse_field("password_length")
    assert unknown.value.code == "policy.unknown_field"
    for scope in ("", "fleet:x", "group:a", "device:123", "enrollment:", "x" * 300, None):
        with pytest.raises(InvalidPolicy) as bad:
            parse_scope(scope)  # type: ignore[arg-type]
        assert bad.value.code == "policy.invalid_scope"
    assert parse_scope("enrollment:line-03").key == "enrollment:line-03"
    pid = "c2c38155-b0d2-48b6-82fd-22fe3b316224"
    assert parse_scope(f"device:{pid.upper()}").key == f"device:{pid}"


def test_durations_and_expiries() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("2w") == timedelta(days=14)
    assert parse_duration("P1DT2H") == timedelta(hours=26)
    assert parse_expiry("7d", NOW) == NOW + timedelta(days=7)
    assert parse_expiry("2026-12-01T00:00:00Z", NOW) == datetime(2026, 12, 1, tzinfo=UTC)
    for bad in ("PT", "P", "1x", "0", "-1d", "1h 30m", "P1Y"):
        with pytest.raises(InvalidPolicy) as refused:
            parse_duration(bad)
        assert refused.value.code == "policy.invalid_duration"
    with pytest.raises(InvalidPolicy) as naive:
        parse_expiry("2026-12-01T00:00:00", NOW)
    assert naive.value.code == "policy.invalid_expiry"
    with pytest.raises(InvalidPolicy) as missing:
        parse_expiry(None, NOW)
    assert missing.value.code == "policy.expiry_required"


def test_weakening_is_named_field_by_field() -> None:
    weaker = BASELINE.with_value(PolicyField.MIN_TLS_VERSION, TlsVersion.TLS_1_2).with_value(
        PolicyField.HARDWARE_KEY_REQUIRED, False
    )
    assert weakened_fields(weaker, BASELINE) == [
        PolicyField.MIN_TLS_VERSION,
        PolicyField.HARDWARE_KEY_REQUIRED,
    ]
    assert weakened_fields(BASELINE, BASELINE) == []


# ---- the strictness order's laws (hypothesis) ------------------------------------------

NETS = st.sampled_from(
    ["0.0.0.0/0", "10.0.0.0/8", "10.3.0.0/16", "10.3.4.0/24", "192.168.0.0/16", "::/0", "fd00::/8"]
)


def _values(field: PolicyField) -> st.SearchStrategy[object]:
    if field is PolicyField.AUTH_METHODS:
        return st.sets(st.sampled_from(["mtls", "jwt", "hmac-token"]), min_size=1).map(list)
    if field is PolicyField.MIN_TLS_VERSION:
        return st.sampled_from(["1.2", "1.3"])
    if field is PolicyField.TLS13_CIPHER_SUITES:
        return st.sets(
            st.sampled_from(
                ["TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_AES_128_CCM_SHA256"]
            ),
            min_size=1,
        ).map(list)
    if field is PolicyField.MAX_CERTIFICATE_LIFETIME:
        return st.integers(300, 90 * 86400)
    if field is PolicyField.MAX_TOKEN_LIFETIME:
        return st.integers(60, 86400)
    if field is PolicyField.CLOCK_SKEW:
        return st.integers(0, 3600)
    if field is PolicyField.KEY_ALGORITHMS:
        return st.sets(
            st.sampled_from(["ec-p256", "ec-p384", "ec-p521", "ed25519", "rsa"]), min_size=1
        ).map(list)
    if field is PolicyField.RSA_MIN_BITS:
        return st.integers(2048, 16384)
    if field in (PolicyField.HARDWARE_KEY_REQUIRED, PolicyField.MEASURED_BOOT_REQUIRED):
        return st.booleans()
    if field is PolicyField.ALLOWED_NETWORKS:
        return st.sets(NETS, min_size=1).map(list)
    return st.integers(1, 6000)


@st.composite
def field_and_values(draw: st.DrawFn) -> tuple[PolicyField, object, object, object]:
    field = draw(st.sampled_from(list(PolicyField)))
    a, b, c = (parse_value(field, draw(_values(field))) for _ in range(3))
    return field, a, b, c


@given(field_and_values())
def test_strictness_is_a_preorder(case: tuple[PolicyField, object, object, object]) -> None:
    field, a, b, c = case
    assert stricter_or_equal(field, a, a)
    if stricter_or_equal(field, a, b) and stricter_or_equal(field, b, c):
        assert stricter_or_equal(field, a, c)


@given(field_and_values())
def test_values_round_trip_through_json(case: tuple[PolicyField, object, object, object]) -> None:
    field, a, _, _ = case
    assert parse_value(field, value_json(field, a)) == a


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(st.sampled_from(list(PolicyField)), JSON_VALUES)
def test_any_input_parses_or_is_refused_with_a_policy_code(field: PolicyField, raw: object) -> None:
    try:
        value = parse_value(field, raw)
    except InvalidPolicy as exc:
        assert exc.code.startswith("policy.") and exc.status == 400
    else:
        assert parse_value(field, value_json(field, value)) == value


@given(st.text(max_size=60))
def test_any_scope_text_parses_or_is_refused(text: str) -> None:
    try:
        scope = parse_scope(text)
    except InvalidPolicy as exc:
        assert exc.code == "policy.invalid_scope"
    else:
        assert parse_scope(scope.key) == scope

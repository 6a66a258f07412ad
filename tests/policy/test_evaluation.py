"""The evaluation helpers other packages call: each refusal carries a precise code and the
field it comes from; malformed input is refused, never allowed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from devicetrust.policy import (
    BASELINE,
    AuthMethod,
    PolicyField,
    PolicyRefusal,
    TlsVersion,
    allowed,
    check_certificate_lifetime,
    check_key,
    check_tls,
    check_token_lifetime,
    key_spec,
    parse_value,
    source_allowed,
    within_clock_skew,
)

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
NETS = BASELINE.with_value(
    PolicyField.ALLOWED_NETWORKS, parse_value(PolicyField.ALLOWED_NETWORKS, "10.3.0.0/16,fd00::/8")
)


def test_methods() -> None:
    assert allowed(BASELINE, AuthMethod.MTLS)
    assert allowed(BASELINE, "jwt")
    refused = allowed(BASELINE, "hmac-token")
    assert not refused and refused.code == "policy.method_not_allowed"
    assert refused.field is PolicyField.AUTH_METHODS
    assert allowed(BASELINE, "password").code == "policy.method_unknown"
    with pytest.raises(PolicyRefusal) as raised:
        refused.require()
    assert raised.value.code == "policy.method_not_allowed" and raised.value.status == 403
    allowed(BASELINE, "mtls").require()


def test_certificate_lifetime_tolerates_the_backdating_skew_only() -> None:
    start = NOW - timedelta(minutes=5)
    assert check_certificate_lifetime(BASELINE, start, NOW + timedelta(hours=24))
    too_long = check_certificate_lifetime(BASELINE, start, NOW + timedelta(hours=25))
    assert too_long.code == "policy.certificate_too_long"
    assert (
        check_certificate_lifetime(BASELINE, NOW, NOW).code == "policy.certificate_invalid_period"
    )


def test_token_lifetime_and_clock_skew() -> None:
    assert check_token_lifetime(BASELINE, NOW, NOW + timedelta(hours=1))
    assert check_token_lifetime(BASELINE, NOW, NOW + timedelta(hours=2)).code == (
        "policy.token_too_long"
    )
    assert within_clock_skew(BASELINE, NOW + timedelta(minutes=4), NOW)
    assert within_clock_skew(BASELINE, NOW - timedelta(minutes=6), NOW).code == "policy.clock_skew"


def test_keys() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert key_spec(p256) == ("ec-p256", 256)
    assert key_spec(ed25519.Ed25519PrivateKey.generate().public_key()) == ("ed25519", 255)
    small = rsa.generate_private_key(65537, 2048).public_key()
    assert key_spec(small) == ("rsa", 2048)
    assert key_spec(object()) == ("unknown", 0)
    assert check_key(BASELINE, "ec-p256", 256, hardware_attested=True)
    assert check_key(BASELINE, "rsa-3072", 3072, hardware_attested=True)
    assert check_key(BASELINE, "rsa", 2048, True).code == "policy.key_too_small"
    assert check_key(BASELINE, "dsa", 2048, True).code == "policy.key_algorithm_unknown"
    assert check_key(BASELINE, "ec-p256", 256, False).code == "policy.hardware_key_required"
    only_p384 = BASELINE.with_value(
        PolicyField.KEY_ALGORITHMS, parse_value(PolicyField.KEY_ALGORITHMS, "ec-p384")
    )
    assert check_key(only_p384, "ec-p256", 256, True).code == "policy.key_algorithm_not_allowed"


def test_sources() -> None:
    assert source_allowed(BASELINE, "203.0.113.7")
    assert source_allowed(NETS, "10.3.200.1")
    assert source_allowed(NETS, "::ffff:10.3.0.9")
    assert source_allowed(NETS, "fd00::1")
    assert source_allowed(NETS, "10.4.0.1").code == "policy.source_not_allowed"
    assert source_allowed(NETS, "2001:db8::1").code == "policy.source_not_allowed"
    assert source_allowed(NETS, "not an ip").code == "policy.source_invalid"


def test_tls() -> None:
    assert check_tls(BASELINE, "TLSv1.3", "TLS_AES_128_GCM_SHA256")
    assert (
        check_tls(BASELINE, "1.3", "TLS_AES_128_CCM_8_SHA256").code == "policy.cipher_not_allowed"
    )
    assert check_tls(BASELINE, "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256").code == (
        "policy.tls_version_too_low"
    )
    assert check_tls(BASELINE, "SSLv3", "x").code == "policy.tls_version_too_low"
    relaxed = BASELINE.with_value(PolicyField.MIN_TLS_VERSION, TlsVersion.TLS_1_2)
    assert check_tls(relaxed, "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert check_tls(relaxed, "TLSv1.2", "AES128-SHA").code == "policy.cipher_not_allowed"

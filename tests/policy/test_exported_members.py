"""The public surface of `devicetrust.policy` is what `__all__` says, and every name exists."""

from __future__ import annotations

import devicetrust.policy
import devicetrust.policy.posture


def test_policy_exports() -> None:
    assert sorted(devicetrust.policy.__all__) == sorted(
        [
            "BASELINE",
            "FLEET",
            "MAX_RELAXATION",
            "POLICY_FIELD_HELP",
            "TLS12_SUITES",
            "TLS13_SUITES",
            "AuthMethod",
            "CertificateLifetimeCaps",
            "DevicePosture",
            "EffectivePolicy",
            "FleetPosture",
            "InvalidPolicy",
        "KeyAdmission",
            "KeyAlgorithmName",
            "Layer",
            "PolicyField",
            "PolicyRefusal",
            "PolicyScope",
            "PolicyService",
            "PostureReports",
            "Relaxation",
            "RelaxationExists",
            "RelaxationInactive",
            "RelaxationNotFound",
            "RelaxationStatus",
            "ScopeKind",
            "ScopePolicy",
            "ScopeTargetNotFound",
            "SecurityPolicy",
            "SourceNetworks",
            "TlsVersion",
            "Verdict",
            "WeakeningRefused",
            "allowed",
            "check_certificate_lifetime",
            "check_key",
            "check_tls",
            "check_token_lifetime",
            "describe",
            "format_duration",
            "key_spec",
            "parse_duration",
            "parse_expiry",
            "parse_field",
            "parse_scope",
            "parse_value",
            "policy_json",
            "resolve",
            "source_allowed",
            "value_json",
            "within_clock_skew",
        ]
    )
    for module in (devicetrust.policy, devicetrust.policy.posture):
        for name in module.__all__:
            assert getattr(module, name) is not None

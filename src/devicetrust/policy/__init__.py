"""Security policy per fleet, enrollment and device; conscious relaxations; evaluation
helpers; the posture report.

    policy = PolicyService(db, clock)
    policy.set("fleet", {"max_certificate_lifetime": "12h"}, actor="operator:alice")
    policy.relax("min_tls_version", "1.2", "enrollment:line-03",
                 reason="legacy PLC firmware until the Q3 update", expires="30d",
                 actor="operator:alice")
    effective = policy.effective(physical_id)        # merged, with each field's source
    allowed(effective, AuthMethod.MTLS).require()    # evaluation helpers return a Verdict
    check_tls(effective, "TLSv1.3", "TLS_AES_128_GCM_SHA256")
    policy.posture.device(physical_id).to_json()     # measures, ETSI/NIST mapping
    policy.posture.fleet().to_json()

A plain `set` never grants more than the built-in baseline (`BASELINE`); only a relaxation,
with a reason and an expiry of at most 90 days, does, and it lapses at its expiry without any
job. Never imports the device-authentication or gateway packages: they call this one.
"""

from devicetrust.policy.admission import KeyAdmission
from devicetrust.policy.certificate_caps import CertificateLifetimeCaps
from devicetrust.policy.durations import format_duration, parse_duration, parse_expiry
from devicetrust.policy.errors import (
    InvalidPolicy,
    PolicyRefusal,
    RelaxationExists,
    RelaxationInactive,
    RelaxationNotFound,
    ScopeTargetNotFound,
    WeakeningRefused,
)
from devicetrust.policy.evaluation import (
    Verdict,
    allowed,
    check_certificate_lifetime,
    check_key,
    check_tls,
    check_token_lifetime,
    key_spec,
    source_allowed,
    within_clock_skew,
)
from devicetrust.policy.fields import (
    POLICY_FIELD_HELP,
    describe,
    parse_field,
    parse_value,
    policy_json,
    value_json,
)
from devicetrust.policy.model import (
    BASELINE,
    TLS12_SUITES,
    TLS13_SUITES,
    AuthMethod,
    KeyAlgorithmName,
    PolicyField,
    SecurityPolicy,
    TlsVersion,
)
from devicetrust.policy.posture import DevicePosture, FleetPosture, PostureReports
from devicetrust.policy.relaxations import MAX_RELAXATION, Relaxation, RelaxationStatus
from devicetrust.policy.resolution import EffectivePolicy, Layer, resolve
from devicetrust.policy.scopes import FLEET, PolicyScope, ScopeKind, parse_scope
from devicetrust.policy.service import PolicyService, ScopePolicy
from devicetrust.policy.source_networks import SourceNetworks

__all__ = [
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

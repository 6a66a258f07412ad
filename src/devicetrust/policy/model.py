"""`SecurityPolicy`: what a device must meet to connect, as one immutable value, and the
secure baseline every fleet starts from.

A plain value: building one never touches the database or the clock. Never holds an empty
set of anything that grants access (an empty set refuses everything and is a mistake, not
a policy: `fields.py` refuses it), and the baseline never allows a mechanism this module
calls weak (TLS 1.2, symmetric device tokens, RSA below 3072 bits, certificates living
longer than a day).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any

Network = IPv4Network | IPv6Network


class AuthMethod(enum.StrEnum):
    """How a device proves its identity to the data plane and the API."""

    MTLS = "mtls"  # X.509 client certificate, private key held by the device only
    JWT = "jwt"  # ES256/EdDSA token signed by the device's own private key
    # An identifier token MACed with a key the server also holds.
    HMAC_TOKEN = "hmac-token"  # noqa: S105 - a method name, not a secret


class TlsVersion(enum.StrEnum):
    TLS_1_2 = "1.2"
    TLS_1_3 = "1.3"

    @property
    def rank(self) -> int:
        return _TLS_RANK[self]


_TLS_RANK = {TlsVersion.TLS_1_2: 2, TlsVersion.TLS_1_3: 3}


class KeyAlgorithmName(enum.StrEnum):
    """Device key algorithms; RSA's size floor is the separate `rsa_min_bits` field."""

    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"
    EC_P521 = "ec-p521"
    ED25519 = "ed25519"
    RSA = "rsa"


class PolicyField(enum.StrEnum):
    AUTH_METHODS = "auth_methods"
    MIN_TLS_VERSION = "min_tls_version"
    TLS13_CIPHER_SUITES = "tls13_cipher_suites"
    MAX_CERTIFICATE_LIFETIME = "max_certificate_lifetime"
    MAX_TOKEN_LIFETIME = "max_token_lifetime"  # noqa: S105 - a field name
    CLOCK_SKEW = "clock_skew"
    KEY_ALGORITHMS = "key_algorithms"
    RSA_MIN_BITS = "rsa_min_bits"
    HARDWARE_KEY_REQUIRED = "hardware_key_required"
    MEASURED_BOOT_REQUIRED = "measured_boot_required"
    ALLOWED_NETWORKS = "allowed_networks"
    CONNECTIONS_PER_MINUTE = "connections_per_minute"
    MESSAGES_PER_SECOND = "messages_per_second"


# RFC 8446 §B.4. The CCM suites are meant for constrained devices; CCM_8 truncates the tag
# to 64 bits, so neither is in the baseline (allowing them is a relaxation).
TLS13_SUITES = (
    "TLS_AES_256_GCM_SHA384",
    "TLS_AES_128_GCM_SHA256",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_CCM_SHA256",
    "TLS_AES_128_CCM_8_SHA256",
)

# When TLS 1.2 is allowed (by a relaxation), only forward-secret AEAD suites are acceptable
# (RFC 9325 §4.2); OpenSSL names, as `ssl.SSLSocket.cipher()` reports them.
TLS12_SUITES = frozenset(
    {
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-CHACHA20-POLY1305",
    }
)


@dataclass(frozen=True, slots=True)
class SecurityPolicy:
    """Every field a device is judged by. Compare two with `fields.at_least_as_strict`."""

    auth_methods: frozenset[AuthMethod]
    min_tls_version: TlsVersion
    tls13_cipher_suites: frozenset[str]
    max_certificate_lifetime: timedelta
    max_token_lifetime: timedelta
    clock_skew: timedelta
    key_algorithms: frozenset[KeyAlgorithmName]
    rsa_min_bits: int
    hardware_key_required: bool
    measured_boot_required: bool
    allowed_networks: tuple[Network, ...]
    connections_per_minute: int
    messages_per_second: int

    def value(self, field: PolicyField) -> Any:
        return getattr(self, field.value)

    def with_value(self, field: PolicyField, value: Any) -> SecurityPolicy:
        return replace(self, **{field.value: value})


POLICY_FIELDS = tuple(PolicyField(f.name) for f in fields(SecurityPolicy))

BASELINE = SecurityPolicy(
    # Both rest on a private key only the device holds (the article's first assumption);
    # an HMAC token's key is known to the server too, so allowing it is a relaxation.
    auth_methods=frozenset({AuthMethod.MTLS, AuthMethod.JWT}),
    min_tls_version=TlsVersion.TLS_1_3,
    tls13_cipher_suites=frozenset(TLS13_SUITES[:3]),
    # Operational certificates live hours (pki's default is 24 h); tokens minutes.
    max_certificate_lifetime=timedelta(hours=24),
    max_token_lifetime=timedelta(hours=1),
    clock_skew=timedelta(minutes=5),
    key_algorithms=frozenset(KeyAlgorithmName),
    # NIST SP 800-57 Part 1 Rev. 5, Table 2: RSA-3072 for 128-bit security, like P-256.
    rsa_min_bits=3072,
    hardware_key_required=True,
    # Off by default: it needs the operator's golden measurements (`devicetrust attestation
    # golden add`) before any boot can match; then `policy set measured_boot_required=true`.
    measured_boot_required=False,
    allowed_networks=(ip_network("0.0.0.0/0"), ip_network("::/0")),
    connections_per_minute=10,
    messages_per_second=50,
)

"""Evaluation helpers: may this device do this, under its effective policy?

Each helper is pure and returns a `Verdict` with a stable code and a precise reason for logs
and audit (never for the remote party: tell it only that it was refused). Callers
(`deviceauth`, `gateway`, provisioning) pass the `EffectivePolicy` from
`PolicyService.effective(physical_id)` or a bare `SecurityPolicy`:

    allowed(effective, AuthMethod.MTLS)
    check_certificate_lifetime(effective, cert.not_valid_before_utc, cert.not_valid_after_utc)
    check_token_lifetime(effective, issued_at, expires_at)
    within_clock_skew(effective, claimed_time, now)
    check_key(effective, "ec-p256", 256, hardware_attested=True)   # or key_spec(public_key)
    source_allowed(effective, "10.1.2.3")
    check_tls(effective, "TLSv1.3", "TLS_AES_128_GCM_SHA256")

Never allows on malformed input: an unparsable address, version or algorithm is a refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import ip_address

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from devicetrust.policy.errors import PolicyRefusal
from devicetrust.policy.model import (
    TLS12_SUITES,
    AuthMethod,
    KeyAlgorithmName,
    PolicyField,
    SecurityPolicy,
    TlsVersion,
)
from devicetrust.policy.resolution import EffectivePolicy

# X.509 validity times carry whole seconds (RFC 5280 §4.1.2.5): the CA truncates both ends.
_SECOND = timedelta(seconds=1)
_CURVES = {
    "secp256r1": KeyAlgorithmName.EC_P256,
    "secp384r1": KeyAlgorithmName.EC_P384,
    "secp521r1": KeyAlgorithmName.EC_P521,
}


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    code: str  # `policy.ok` or the refusal's `policy.*` code
    reason: str
    field: PolicyField | None = None

    def __bool__(self) -> bool:
        return self.allowed

    def require(self) -> None:
        """Raise `PolicyRefusal` (403) carrying the code, if refused."""
        if not self.allowed:
            raise PolicyRefusal(self.code, self.reason)


OK = Verdict(True, "policy.ok", "allowed by policy")


def _refuse(code: str, reason: str, field: PolicyField) -> Verdict:
    return Verdict(False, code, reason, field)


def _policy(p: EffectivePolicy | SecurityPolicy) -> SecurityPolicy:
    return p.policy if isinstance(p, EffectivePolicy) else p


def allowed(p: EffectivePolicy | SecurityPolicy, method: AuthMethod | str) -> Verdict:
    policy = _policy(p)
    try:
        chosen = AuthMethod(method)
    except ValueError:
        return _refuse(
            "policy.method_unknown",
            f"unknown authentication method {str(method)[:32]!r}",
            PolicyField.AUTH_METHODS,
        )
    if chosen not in policy.auth_methods:
        return _refuse(
            "policy.method_not_allowed",
            f"{chosen.value} authentication is not allowed (allowed: "
            f"{', '.join(sorted(m.value for m in policy.auth_methods))})",
            PolicyField.AUTH_METHODS,
        )
    return OK


def check_certificate_lifetime(
    p: EffectivePolicy | SecurityPolicy, not_before: datetime, not_after: datetime
) -> Verdict:
    """The certificate's whole validity period within the maximum; the CA's backdating of
    `not_before` is tolerated up to the policy's clock-skew window."""
    policy = _policy(p)
    lifetime = not_after - not_before
    limit = policy.max_certificate_lifetime + policy.clock_skew + _SECOND
    if lifetime <= timedelta(0):
        return _refuse(
            "policy.certificate_invalid_period",
            "the certificate's validity period is empty",
            PolicyField.MAX_CERTIFICATE_LIFETIME,
        )
    if lifetime > limit:
        return _refuse(
            "policy.certificate_too_long",
            f"the certificate lives {lifetime}, longer than the maximum "
            f"{policy.max_certificate_lifetime}",
            PolicyField.MAX_CERTIFICATE_LIFETIME,
        )
    return OK


def check_token_lifetime(
    p: EffectivePolicy | SecurityPolicy, issued_at: datetime, expires_at: datetime
) -> Verdict:
    """A token's validity (`exp - iat`) within the maximum plus the clock-skew window."""
    policy = _policy(p)
    lifetime = expires_at - issued_at
    if lifetime > policy.max_token_lifetime + policy.clock_skew:
        return _refuse(
            "policy.token_too_long",
            f"the token is valid for {lifetime}, longer than the maximum "
            f"{policy.max_token_lifetime}",
            PolicyField.MAX_TOKEN_LIFETIME,
        )
    return OK


def within_clock_skew(
    p: EffectivePolicy | SecurityPolicy, claimed: datetime, now: datetime
) -> Verdict:
    """A time the device states (`iat`, a signed timestamp) is within the skew of ours."""
    policy = _policy(p)
    drift = abs(claimed - now)
    if drift > policy.clock_skew:
        return _refuse(
            "policy.clock_skew",
            f"the device's time is {drift} away from the server's (tolerated: {policy.clock_skew})",
            PolicyField.CLOCK_SKEW,
        )
    return OK


def key_spec(public_key: object) -> tuple[str, int]:
    """(algorithm, size in bits) of a device public key, in the policy's names; unknown
    types come back as ("unknown", 0), which `check_key` refuses."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        name = _CURVES.get(public_key.curve.name)
        return (name.value, public_key.curve.key_size) if name else ("unknown", 0)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return KeyAlgorithmName.ED25519.value, 255
    if isinstance(public_key, rsa.RSAPublicKey):
        return KeyAlgorithmName.RSA.value, public_key.key_size
    return "unknown", 0


def check_key(
    p: EffectivePolicy | SecurityPolicy,
    algorithm: str,
    size: int,
    hardware_attested: bool,
) -> Verdict:
    """`algorithm` as the policy names it (`ec-p256`, `ed25519`, `rsa`; `rsa-3072` works
    too), `size` in bits, and whether a TPM/HSM attested that the key lives in it."""
    policy = _policy(p)
    text = str(algorithm).strip().lower()
    if text.startswith("rsa-") and text[4:].isdigit():
        text = KeyAlgorithmName.RSA.value
    try:
        name = KeyAlgorithmName(text)
    except ValueError:
        return _refuse(
            "policy.key_algorithm_unknown",
            f"unknown key algorithm {str(algorithm)[:32]!r}",
            PolicyField.KEY_ALGORITHMS,
        )
    if name not in policy.key_algorithms:
        return _refuse(
            "policy.key_algorithm_not_allowed",
            f"{name.value} keys are not allowed",
            PolicyField.KEY_ALGORITHMS,
        )
    if name is KeyAlgorithmName.RSA and size < policy.rsa_min_bits:
        return _refuse(
            "policy.key_too_small",
            f"an RSA key of {size} bits is below the minimum of {policy.rsa_min_bits}",
            PolicyField.RSA_MIN_BITS,
        )
    if policy.hardware_key_required and not hardware_attested:
        return _refuse(
            "policy.hardware_key_required",
            "the key is not attested to live in a TPM or HSM: provision with TPM attestation,"
            " or relax hardware_key_required for this scope with a reason",
            PolicyField.HARDWARE_KEY_REQUIRED,
        )
    return OK


def source_allowed(p: EffectivePolicy | SecurityPolicy, address: str) -> Verdict:
    policy = _policy(p)
    try:
        ip = ip_address(str(address).strip())
    except ValueError:
        return _refuse(
            "policy.source_invalid",
            f"{str(address)[:64]!r} is not an IP address",
            PolicyField.ALLOWED_NETWORKS,
        )
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:a.b.c.d is judged as IPv4
    if mapped is not None:
        ip = mapped
    if not any(ip.version == net.version and ip in net for net in policy.allowed_networks):
        return _refuse(
            "policy.source_not_allowed",
            f"{ip} is outside the allowed networks",
            PolicyField.ALLOWED_NETWORKS,
        )
    return OK


def check_tls(p: EffectivePolicy | SecurityPolicy, version: str, cipher: str) -> Verdict:
    """`version` as `ssl` reports it (`TLSv1.3`) or bare (`1.3`); `cipher` by its IANA
    (TLS 1.3) or OpenSSL (TLS 1.2) name."""
    policy = _policy(p)
    text = str(version).strip().lower().removeprefix("tlsv").removeprefix("tls").strip()
    try:
        chosen = TlsVersion(text)
    except ValueError:
        return _refuse(
            "policy.tls_version_too_low",
            f"{str(version)[:16]} is not an accepted TLS version",
            PolicyField.MIN_TLS_VERSION,
        )
    if chosen.rank < policy.min_tls_version.rank:
        return _refuse(
            "policy.tls_version_too_low",
            f"TLS {chosen.value} is below the minimum TLS {policy.min_tls_version.value}",
            PolicyField.MIN_TLS_VERSION,
        )
    suite = str(cipher).strip()
    if chosen is TlsVersion.TLS_1_3 and suite.upper() not in policy.tls13_cipher_suites:
        return _refuse(
            "policy.cipher_not_allowed",
            f"TLS 1.3 suite {suite[:64]} is not allowed",
            PolicyField.TLS13_CIPHER_SUITES,
        )
    if chosen is TlsVersion.TLS_1_2 and suite.upper() not in TLS12_SUITES:
        return _refuse(
            "policy.cipher_not_allowed",
            f"TLS 1.2 suite {suite[:64]} is not forward-secret AEAD",
            PolicyField.MIN_TLS_VERSION,
        )
    return OK

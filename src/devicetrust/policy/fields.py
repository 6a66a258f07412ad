"""How each policy field is parsed, bounded, shown and ordered by strictness.

One `FieldSpec` per `PolicyField`: `parse` takes what an operator or a JSON body gives
(`"mtls,jwt"`, `["mtls"]`, `"24h"`, `86400`, `"true"`, `"10.0.0.0/8"`) and returns the typed
value or raises `InvalidPolicy` with a message naming the field; `stricter_or_equal(a, b)`
says whether `a` grants nothing `b` does not. Hard bounds hold even for relaxations (no TLS
below 1.2, no certificate beyond 90 days, no RSA below 2048 bits): past them a policy is not
weak but broken. Pure; never reads the clock or the database.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from ipaddress import ip_network
from typing import Any, Generic, TypeVar

from devicetrust.policy.durations import format_duration, parse_duration
from devicetrust.policy.errors import InvalidPolicy
from devicetrust.policy.model import (
    POLICY_FIELDS,
    TLS13_SUITES,
    AuthMethod,
    KeyAlgorithmName,
    Network,
    PolicyField,
    SecurityPolicy,
    TlsVersion,
)

T = TypeVar("T")
E = TypeVar("E", bound=enum.StrEnum)
MAX_NETWORKS = 256


def _invalid(field: PolicyField, message: str, code: str = "policy.invalid_value") -> InvalidPolicy:
    return InvalidPolicy(code, f"{field.value}: {message}", field=field.value)


def _items(field: PolicyField, raw: object) -> list[str]:
    if isinstance(raw, str):
        items = [part.strip() for part in raw.split(",")]
    elif isinstance(raw, list | tuple | set | frozenset):
        items = [item.strip() if isinstance(item, str) else item for item in raw]
    else:
        raise _invalid(field, "a comma-separated list or a JSON array of strings")
    if any(not isinstance(item, str) or not item for item in items):
        raise _invalid(field, "every entry is a non-empty string")
    if not items or len(items) > MAX_NETWORKS:
        raise _invalid(field, "an empty list would refuse every device", "policy.empty_set")
    return [str(item) for item in items]


@dataclass(frozen=True, slots=True)
class FieldSpec(Generic[T]):
    field: PolicyField
    help: str
    parse_raw: Callable[[PolicyField, object], T]
    to_json_value: Callable[[T], Any]
    stricter: Callable[[T, T], bool]  # a grants nothing b does not
    show: Callable[[T], str]

    def parse(self, raw: object) -> T:
        return self.parse_raw(self.field, raw)

    def to_json(self, value: T) -> Any:
        return self.to_json_value(value)

    def stricter_or_equal(self, candidate: T, than: T) -> bool:
        return self.stricter(candidate, than)

    def describe(self, value: T) -> str:
        return self.show(value)


def _enum_set(kind: type[E]) -> Callable[[PolicyField, object], frozenset[E]]:
    def parse(field: PolicyField, raw: object) -> frozenset[E]:
        known = {member.value: member for member in kind}
        out: set[E] = set()
        for item in _items(field, raw):
            member = known.get(item.lower())
            if member is None:
                raise _invalid(field, f"unknown value {item[:40]!r}; known: {', '.join(known)}")
            out.add(member)
        return frozenset(out)

    return parse


def _suites(field: PolicyField, raw: object) -> frozenset[str]:
    out: set[str] = set()
    for item in _items(field, raw):
        name = item.upper()
        if name not in TLS13_SUITES:
            raise _invalid(
                field, f"unknown TLS 1.3 suite {item[:40]!r}; known: {', '.join(TLS13_SUITES)}"
            )
        out.add(name)
    return frozenset(out)


def _tls(field: PolicyField, raw: object) -> TlsVersion:
    text = str(raw).strip().lower().removeprefix("tlsv").removeprefix("tls")
    if text in ("1.0", "1.1", "1", "10", "11"):
        raise _invalid(field, "TLS 1.0 and 1.1 are deprecated (RFC 8996)", "policy.out_of_range")
    try:
        return TlsVersion(text.strip())
    except ValueError:
        raise _invalid(field, "1.2 or 1.3") from None


def _duration(low: timedelta, high: timedelta) -> Callable[[PolicyField, object], timedelta]:
    def parse(field: PolicyField, raw: object) -> timedelta:
        value = parse_duration(raw, what=field.value, allow_zero=low == timedelta(0))
        if not low <= value <= high:
            raise _invalid(
                field,
                f"between {format_duration(low)} and {format_duration(high)}",
                "policy.out_of_range",
            )
        return value

    return parse


def _integer(low: int, high: int) -> Callable[[PolicyField, object], int]:
    def parse(field: PolicyField, raw: object) -> int:
        if isinstance(raw, bool):
            raise _invalid(field, "an integer")
        if isinstance(raw, str) and raw.strip().isdigit() and len(raw.strip()) <= 9:
            raw = int(raw.strip())
        if not isinstance(raw, int):
            raise _invalid(field, "an integer")
        if not low <= raw <= high:
            raise _invalid(field, f"between {low} and {high}", "policy.out_of_range")
        return raw

    return parse


def _boolean(field: PolicyField, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise _invalid(field, "true or false")


def _networks(field: PolicyField, raw: object) -> tuple[Network, ...]:
    out: set[Network] = set()
    for item in _items(field, raw):
        try:
            out.add(ip_network(item, strict=True))
        except ValueError:
            raise _invalid(
                field, f"{item[:50]!r} is not a network in CIDR form with no host bits set"
            ) from None
    return tuple(sorted(out, key=lambda n: (n.version, n.network_address, n.prefixlen)))


def _covered(networks: Iterable[Network], by: Iterable[Network]) -> bool:
    """Every network of `networks` lies inside some network of `by`."""
    parents = list(by)
    return all(
        any(n.version == p.version and n.subnet_of(p) for p in parents)  # type: ignore[arg-type]
        for n in networks
    )


def _show_set(values: Iterable[object]) -> str:
    return ", ".join(sorted(str(v) for v in values))


def _sorted_values(values: Iterable[enum.StrEnum | str]) -> list[str]:
    return sorted(str(v) for v in values)


_SPECS: dict[PolicyField, FieldSpec[Any]] = {
    spec.field: spec
    for spec in (
        FieldSpec(
            PolicyField.AUTH_METHODS,
            "authentication methods a device may use (mtls, jwt, hmac-token)",
            _enum_set(AuthMethod),
            _sorted_values,
            lambda a, b: a <= b,
            _show_set,
        ),
        FieldSpec(
            PolicyField.MIN_TLS_VERSION,
            "lowest TLS version accepted (1.3; 1.2 is a relaxation)",
            _tls,
            lambda v: v.value,
            lambda a, b: a.rank >= b.rank,
            lambda v: f"TLS {v.value}",
        ),
        FieldSpec(
            PolicyField.TLS13_CIPHER_SUITES,
            "TLS 1.3 cipher suites accepted (IANA names)",
            _suites,
            _sorted_values,
            lambda a, b: a <= b,
            _show_set,
        ),
        FieldSpec(
            PolicyField.MAX_CERTIFICATE_LIFETIME,
            "longest life of an operational certificate (5m-90d)",
            _duration(timedelta(minutes=5), timedelta(days=90)),
            lambda v: int(v.total_seconds()),
            lambda a, b: a <= b,
            format_duration,
        ),
        FieldSpec(
            PolicyField.MAX_TOKEN_LIFETIME,
            "longest validity of a device token, HMAC or JWT (1m-24h)",
            _duration(timedelta(minutes=1), timedelta(hours=24)),
            lambda v: int(v.total_seconds()),
            lambda a, b: a <= b,
            format_duration,
        ),
        FieldSpec(
            PolicyField.CLOCK_SKEW,
            "tolerated difference between device and server clocks (0-1h)",
            _duration(timedelta(0), timedelta(hours=1)),
            lambda v: int(v.total_seconds()),
            lambda a, b: a <= b,
            format_duration,
        ),
        FieldSpec(
            PolicyField.KEY_ALGORITHMS,
            "device key algorithms (ec-p256, ec-p384, ec-p521, ed25519, rsa)",
            _enum_set(KeyAlgorithmName),
            _sorted_values,
            lambda a, b: a <= b,
            _show_set,
        ),
        FieldSpec(
            PolicyField.RSA_MIN_BITS,
            "smallest RSA modulus accepted (2048-16384 bits; below 3072 is a relaxation)",
            _integer(2048, 16384),
            lambda v: v,
            lambda a, b: a >= b,
            lambda v: f"{v} bits",
        ),
        FieldSpec(
            PolicyField.HARDWARE_KEY_REQUIRED,
            "the device key must be TPM/HSM attested (true/false)",
            _boolean,
            lambda v: v,
            lambda a, b: a or not b,
            lambda v: "required" if v else "not required",
        ),
        FieldSpec(
            PolicyField.MEASURED_BOOT_REQUIRED,
            "measured-boot attestation required (true/false)",
            _boolean,
            lambda v: v,
            lambda a, b: a or not b,
            lambda v: "required" if v else "not required",
        ),
        FieldSpec(
            PolicyField.ALLOWED_NETWORKS,
            "source networks devices may connect from (CIDRs)",
            _networks,
            lambda v: [str(n) for n in v],
            _covered,
            lambda v: ", ".join(str(n) for n in v),
        ),
        FieldSpec(
            PolicyField.CONNECTIONS_PER_MINUTE,
            "connection attempts per device per minute (1-6000)",
            _integer(1, 6000),
            lambda v: v,
            lambda a, b: a <= b,
            lambda v: f"{v}/min",
        ),
        FieldSpec(
            PolicyField.MESSAGES_PER_SECOND,
            "messages per device per second (1-100000)",
            _integer(1, 100_000),
            lambda v: v,
            lambda a, b: a <= b,
            lambda v: f"{v}/s",
        ),
    )
}
assert tuple(_SPECS) == POLICY_FIELDS, "one spec per SecurityPolicy field, in order"


def parse_field(name: object) -> PolicyField:
    try:
        return PolicyField(str(name).strip().lower().replace("-", "_"))
    except ValueError:
        known = ", ".join(f.value for f in PolicyField)
        raise InvalidPolicy(
            "policy.unknown_field", f"unknown policy field {str(name)[:64]!r}; known: {known}"
        ) from None


def spec(field: PolicyField) -> FieldSpec[Any]:
    return _SPECS[field]


def parse_value(field: PolicyField, raw: object) -> Any:
    return _SPECS[field].parse(raw)


def value_json(field: PolicyField, value: Any) -> Any:
    return _SPECS[field].to_json(value)


def stricter_or_equal(field: PolicyField, candidate: Any, than: Any) -> bool:
    return bool(_SPECS[field].stricter_or_equal(candidate, than))


def describe(field: PolicyField, value: Any) -> str:
    return _SPECS[field].describe(value)


def weakened_fields(policy: SecurityPolicy, baseline: SecurityPolicy) -> list[PolicyField]:
    """The fields on which `policy` grants something `baseline` does not."""
    return [
        f for f in POLICY_FIELDS if not stricter_or_equal(f, policy.value(f), baseline.value(f))
    ]


def policy_json(policy: SecurityPolicy) -> dict[str, Any]:
    return {f.value: value_json(f, policy.value(f)) for f in POLICY_FIELDS}


POLICY_FIELD_HELP: dict[PolicyField, str] = {f: s.help for f, s in _SPECS.items()}

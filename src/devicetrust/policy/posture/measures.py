"""The article's security measures, judged per device and for the platform from `facts`.

Each measure is `pass`, `fail`, `relaxed` (fails the policy without relaxations, passes with
the relaxations in force, which are named), `unknown` (the platform holds no data to judge
it: never reported as passing) or `not_applicable` (e.g. no credential yet). Pure: facts in,
results out.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from devicetrust.domain.lifecycle import DeviceState
from devicetrust.policy.durations import format_duration
from devicetrust.policy.evaluation import check_certificate_lifetime, check_key
from devicetrust.policy.model import PolicyField
from devicetrust.policy.posture.facts import DeviceFacts, PlatformFacts
from devicetrust.policy.resolution import EffectivePolicy
from devicetrust.provisioning.records import AttestationKind


class Status(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - a status, not a password
    FAIL = "fail"
    RELAXED = "relaxed"
    UNKNOWN = "unknown"
    NOT_APPLICABLE = "not_applicable"


# Worst first: an unknown may hide a failure, so it ranks above a conscious relaxation.
_RANK = {Status.FAIL: 4, Status.UNKNOWN: 3, Status.RELAXED: 2, Status.PASS: 1}


def worst(statuses: Iterable[Status]) -> Status:
    ranked = [s for s in statuses if s is not Status.NOT_APPLICABLE]
    return max(ranked, key=_RANK.__getitem__) if ranked else Status.NOT_APPLICABLE


class Measure(enum.StrEnum):
    UNIQUE_IDENTITY = "unique_identity"
    KEY_IN_HARDWARE = "key_in_hardware"
    SHORT_LIVED_CREDENTIALS = "short_lived_credentials"
    ENCRYPTED_STORAGE = "encrypted_storage"
    SIGNED_FIRMWARE = "signed_firmware_and_patch_level"
    ATTESTATION = "attestation"
    MEASURED_BOOT = "measured_boot"
    SECURE_COMMUNICATION = "secure_communication"


@dataclass(frozen=True, slots=True)
class Result:
    measure: Measure
    status: Status
    reason: str
    check: str = ""  # a finer name for platform checks (`ca_keys_protected`, ...)
    relaxations: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "measure": self.measure.value,
            "check": self.check or self.measure.value,
            "status": self.status.value,
            "reason": self.reason,
            "relaxations": list(self.relaxations),
        }


_COMMUNICATION = frozenset(
    {
        PolicyField.AUTH_METHODS,
        PolicyField.MIN_TLS_VERSION,
        PolicyField.TLS13_CIPHER_SUITES,
        PolicyField.MAX_TOKEN_LIFETIME,
        PolicyField.CLOCK_SKEW,
        PolicyField.KEY_ALGORITHMS,
        PolicyField.RSA_MIN_BITS,
        PolicyField.ALLOWED_NETWORKS,
        PolicyField.CONNECTIONS_PER_MINUTE,
        PolicyField.MESSAGES_PER_SECOND,
    }
)


def _relaxed(
    measure: Measure,
    effective: EffectivePolicy,
    on: Iterable[PolicyField],
    reason: str,
    check: str = "",
) -> Result:
    wanted = set(on)
    ids = tuple(r.relaxation_id for r in effective.relaxations if r.rule in wanted)
    return Result(measure, Status.RELAXED, reason, check, ids)


def unique_identity(f: DeviceFacts) -> Result:
    m = Measure.UNIQUE_IDENTITY
    if f.shared_key_units:
        return Result(
            m, Status.FAIL, f"its key is also certified for {f.shared_key_units} other unit(s)"
        )
    bound_states = (DeviceState.PROVISIONED, DeviceState.ACTIVE)
    if f.state in bound_states and f.logical_name is None:
        return Result(m, Status.FAIL, f"{f.state.value} but holds no logical identity")
    named = f" holding {f.logical_name}" if f.logical_name else ""
    return Result(m, Status.PASS, f"CSPRNG UUIDv4 physical identity{named}; key not shared")


def _hardware_proof(f: DeviceFacts) -> tuple[bool, str]:
    if f.attestation is not AttestationKind.TPM:
        what = f.attestation.value if f.attestation else "no attested provisioning"
        return False, f"key not attested in hardware ({what})"
    if not f.require_hardware_key:
        return False, "TPM-attested, but the enrollment does not bind the key to the TPM"
    if any(c.spki_sha256 != f.provisioned_spki for c in f.certificates):
        return False, "a current certificate's key is not the TPM-attested key"
    return True, "key certified inside the TPM at provisioning"


def key_in_hardware(f: DeviceFacts) -> Result:
    m = Measure.KEY_IN_HARDWARE
    if not f.certificates:
        return Result(m, Status.NOT_APPLICABLE, "no operational credential")
    proven, reason = _hardware_proof(f)
    if proven or not f.effective.strict.hardware_key_required:
        return Result(m, Status.PASS if proven else Status.FAIL, reason)
    if not f.effective.policy.hardware_key_required:
        return _relaxed(m, f.effective, [PolicyField.HARDWARE_KEY_REQUIRED], reason)
    return Result(m, Status.FAIL, reason + "; the policy requires it")


def short_lived_credentials(f: DeviceFacts) -> Result:
    m = Measure.SHORT_LIVED_CREDENTIALS
    if not f.certificates:
        return Result(m, Status.NOT_APPLICABLE, "no operational credential")
    strict = [
        c
        for c in f.certificates
        if not check_certificate_lifetime(f.effective.strict, c.not_before, c.not_after)
    ]
    if not strict:
        return Result(
            m,
            Status.PASS,
            "every certificate within "
            f"{format_duration(f.effective.strict.max_certificate_lifetime)}",
        )
    over = [
        c
        for c in strict
        if not check_certificate_lifetime(f.effective.policy, c.not_before, c.not_after)
    ]
    longest = max(c.not_after - c.not_before for c in strict)
    reason = f"a certificate lives {format_duration(longest)} (serial {strict[0].serial})"
    if over:
        return Result(
            m,
            Status.FAIL,
            f"{reason}, over {format_duration(f.effective.policy.max_certificate_lifetime)}",
        )
    return _relaxed(m, f.effective, [PolicyField.MAX_CERTIFICATE_LIFETIME], reason)


def encrypted_storage(f: DeviceFacts) -> Result:
    m = Measure.ENCRYPTED_STORAGE
    if f.enrollment_key_sealed is False:
        return Result(m, Status.FAIL, "its enrollment key is stored without the vault envelope")
    return Result(
        m,
        Status.UNKNOWN,
        "devices do not report storage encryption yet (device SDK keystores: later issue)",
    )


def signed_firmware(_f: DeviceFacts) -> Result:
    return Result(
        Measure.SIGNED_FIRMWARE,
        Status.UNKNOWN,
        "no update repository yet: firmware signatures and versions are not known",
    )


def attestation(f: DeviceFacts) -> Result:
    m = Measure.ATTESTATION
    if f.attestation is AttestationKind.TPM:
        return Result(m, Status.PASS, f"provisioned by TPM endorsement key ({f.enrollment})")
    if f.attestation is AttestationKind.X509:
        return Result(m, Status.PASS, f"provisioned by factory birth certificate ({f.enrollment})")
    if f.attestation is AttestationKind.SYMMETRIC_KEY:
        return Result(
            m,
            Status.FAIL,
            "provisioned by a symmetric key the platform also holds; use x509 or TPM",
        )
    if f.state is DeviceState.MANUFACTURED:
        return Result(m, Status.NOT_APPLICABLE, "not provisioned yet")
    return Result(m, Status.FAIL, "holds its state without an attested provisioning")


def measured_boot(f: DeviceFacts) -> Result:
    m = Measure.MEASURED_BOOT
    if f.boot is not None:
        when = f"quote of {f.boot.attested_at:%Y-%m-%d %H:%M}Z"
        status = Status.PASS if f.boot.matches_now else Status.FAIL
        return Result(m, status, f"{when}: {f.boot.detail}")
    if f.effective.policy.measured_boot_required:
        return Result(m, Status.FAIL, "the policy requires measured boot; no quote verified")
    if f.effective.strict.measured_boot_required:
        return _relaxed(
            m, f.effective, [PolicyField.MEASURED_BOOT_REQUIRED], "no TPM quote verified"
        )
    return Result(m, Status.UNKNOWN, "no TPM quote verified (measured boot not required)")


def secure_communication(f: DeviceFacts) -> Result:
    m = Measure.SECURE_COMMUNICATION
    relaxed = sorted(r.rule.value for r in f.effective.relaxations if r.rule in _COMMUNICATION)
    bad = [
        c for c in f.certificates if not check_key(f.effective.policy, c.algorithm, c.size, True)
    ]
    if bad:
        return Result(
            m,
            Status.FAIL,
            f"certificate {bad[0].serial} has a {bad[0].algorithm} key "
            f"of {bad[0].size} bits, not allowed",
        )
    weak = [
        c for c in f.certificates if not check_key(f.effective.strict, c.algorithm, c.size, True)
    ]
    if relaxed or weak:
        fields = [*relaxed, *([PolicyField.RSA_MIN_BITS.value] if weak else [])]
        return _relaxed(
            m,
            f.effective,
            _COMMUNICATION,
            f"relaxed: {', '.join(sorted(set(fields)))}",
        )
    return Result(m, Status.PASS, "TLS 1.3, asymmetric device credentials, approved keys")


DEVICE_MEASURES: tuple[tuple[Measure, Callable[[DeviceFacts], Result]], ...] = (
    (Measure.UNIQUE_IDENTITY, unique_identity),
    (Measure.KEY_IN_HARDWARE, key_in_hardware),
    (Measure.SHORT_LIVED_CREDENTIALS, short_lived_credentials),
    (Measure.ENCRYPTED_STORAGE, encrypted_storage),
    (Measure.SIGNED_FIRMWARE, signed_firmware),
    (Measure.ATTESTATION, attestation),
    (Measure.MEASURED_BOOT, measured_boot),
    (Measure.SECURE_COMMUNICATION, secure_communication),
)


def assess_device(f: DeviceFacts) -> tuple[Result, ...]:
    if f.state is DeviceState.DECOMMISSIONED:
        return tuple(
            Result(measure, Status.NOT_APPLICABLE, "decommissioned")
            for measure, _ in DEVICE_MEASURES
        )
    return tuple(judge(f) for _, judge in DEVICE_MEASURES)


_FLEET_POLICY: tuple[tuple[Measure, frozenset[PolicyField]], ...] = (
    (Measure.KEY_IN_HARDWARE, frozenset({PolicyField.HARDWARE_KEY_REQUIRED})),
    (Measure.SHORT_LIVED_CREDENTIALS, frozenset({PolicyField.MAX_CERTIFICATE_LIFETIME})),
    (Measure.SECURE_COMMUNICATION, _COMMUNICATION),
)


def fleet_policy(fleet: EffectivePolicy) -> tuple[Result, ...]:
    """The fleet-wide policy itself: within the baseline, or relaxed for every device."""
    out: list[Result] = []
    for measure, on in _FLEET_POLICY:
        rules = sorted(r.rule.value for r in fleet.relaxations if r.rule in on)
        if rules:
            reason = f"fleet-wide relaxation of {', '.join(rules)}"
            out.append(_relaxed(measure, fleet, on, reason, "fleet_policy"))
        else:
            out.append(
                Result(measure, Status.PASS, "fleet policy within the baseline", "fleet_policy")
            )
    return tuple(out)


def assess_platform(p: PlatformFacts, fleet: EffectivePolicy) -> tuple[Result, ...]:
    out: list[Result] = list(fleet_policy(fleet))
    if not p.ca_keys:
        out.append(
            Result(
                Measure.ENCRYPTED_STORAGE,
                Status.NOT_APPLICABLE,
                "no CA initialised",
                "ca_keys_protected",
            )
        )
    else:
        loose = [c for c in p.ca_keys if c.scheme not in ("file", "pkcs11")]
        out.append(
            Result(
                Measure.ENCRYPTED_STORAGE,
                Status.FAIL if loose else Status.PASS,
                f"CA key of {loose[0].role} is kept as {loose[0].scheme}:"
                if loose
                else "every CA key is an encrypted PKCS#8 file or inside a PKCS#11 token",
                "ca_keys_protected",
            )
        )
        soft = [c.role for c in p.ca_keys if c.scheme != "pkcs11"]
        out.append(
            Result(
                Measure.KEY_IN_HARDWARE,
                Status.FAIL if soft else Status.PASS,
                f"CA keys in encrypted files, not an HSM: {', '.join(soft)}"
                if soft
                else "every CA key is inside a PKCS#11 token",
                "ca_keys_in_hardware",
            )
        )
    bad = p.unsealed_keys + p.unsealed_webhook_secrets
    total = bad + p.sealed_keys + p.sealed_webhook_secrets
    out.append(
        Result(
            Measure.ENCRYPTED_STORAGE,
            Status.FAIL if bad else (Status.PASS if total else Status.NOT_APPLICABLE),
            f"{bad} stored secret(s) without the vault envelope"
            if bad
            else f"{total} enrollment key(s) and webhook secret(s), all sealed by the vault",
            "secrets_sealed",
        )
    )
    return tuple(out)

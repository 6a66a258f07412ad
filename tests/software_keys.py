"""The conscious relaxation a test fleet makes, as an operator of units without TPM-backed
TLS keys would: the secure baseline's `hardware_key_required` refuses any operational key a
TPM did not attest, so fixtures that provision with symmetric keys or X.509 birth
certificates relax that one rule, fleet-wide, with a reason and an expiry (audited like any
relaxation). Tests of the rule itself (tests/policy/test_admission.py, the TPM suites) do not."""

from __future__ import annotations

from devicetrust.policy import PolicyService

RULE = "hardware_key_required"
REASON = "test fleet: operational keys live in software keystores, not in a TPM"
EXPIRES = "90d"
ACTOR = "operator:test"

CLI_ARGS = (
    "policy", "relax", "--rule", RULE, "--value", "false", "--scope", "fleet",
    "--expires", EXPIRES, "--reason", REASON,
)  # fmt: skip


def allow_software_keys(policy: PolicyService, *, scope: str = "fleet") -> None:
    policy.relax(RULE, False, scope, reason=REASON, expires=EXPIRES, actor=ACTOR)

"""Measured-boot attestation: golden measurements (known-good SHA-256 PCR values, by name)
and the verdicts on the PCR values a unit's TPM quote proved.

    attestation = AttestationService(db, clock)
    attestation.add_golden("arm-fw-2.4.1", {"0": "3d45...", "7": "b2a8..."}, actor="operator:a")
    attestation.quote_selection()        # the PCRs provisioning asks the TPM to quote
    attestation.record(physical_id, pcrs, source="provisioning")   # -> BootAttestation
    attestation.latest(physical_id).verdict                        # matched / unknown_...

Quote verification (signature by the EK-bound attestation key, freshness, PCR digest) is the
TPM method's (`provisioning.tpm`); the security policy's `measured_boot_required` decides
whether a verdict other than `matched` refuses provisioning (`policy.admission`). Sits beside
`identity` and `pki`: imports only `store` and `domain`.
"""

from devicetrust.attestation.model import BootAttestation, GoldenMeasurement
from devicetrust.attestation.rules import (
    DEFAULT_QUOTE_PCRS,
    BootVerdict,
    Judgement,
    judge,
    parse_pcrs,
    parse_selection,
    pcrs_json,
    quote_selection,
)
from devicetrust.attestation.service import AttestationService

__all__ = [
    "DEFAULT_QUOTE_PCRS",
    "AttestationService",
    "BootAttestation",
    "BootVerdict",
    "GoldenMeasurement",
    "Judgement",
    "judge",
    "parse_pcrs",
    "parse_selection",
    "pcrs_json",
    "quote_selection",
]

"""Measured-boot evidence: the AK's TPM2_Quote of the unit's PCRs (TPM 2.0 Part 3 §18.4),
checked in this order:

1. the signature over the attest structure verifies with the AK (already bound to the
   enrolled EK by credential activation), in the AK's own scheme    provisioning.tpm_refused
2. the attest structure is TPM-generated (magic) and a quote         provisioning.tpm_refused
3. its qualifying data is the server's nonce (freshness)            provisioning.tpm_refused
4. it selects PCRs of the SHA-256 bank only                          provisioning.tpm_refused
5. the PCR values the device reports are exactly the selected ones,
   and their SHA-256 in index order is the quote's pcrDigest         provisioning.tpm_refused

Only then are the values trusted: they are what the TPM held when it signed. Whether they are
*good* is the attestation package's judgement against golden measurements. Never reads the
attest structure before its signature verified.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from devicetrust.attestation import parse_pcrs
from devicetrust.domain.errors import InvalidInput
from devicetrust.provisioning._tpm_objects import (
    ALG_SHA256,
    TPM_GENERATED_VALUE,
    TpmPublic,
    unmarshal,
    verify_signature,
)
from devicetrust.provisioning.errors import AttestationFailed, MalformedEvidence, RefusalReason

ST_ATTEST_QUOTE = 0x8018


def verify_quote(
    *, ak: TpmPublic, attest: bytes, signature: bytes, pcr_values: Any, nonce: bytes
) -> dict[int, bytes]:
    """Steps 1-5 of the module docstring; the proved SHA-256 PCR values by index.
    `pcr_values` is the device's `{"0": "<64 hex>", ...}`."""
    verify_signature(ak, signature, attest, "quote_signature")
    parsed = unmarshal("TPMS_ATTEST", attest, "quote_info")
    if int(parsed.magic) != TPM_GENERATED_VALUE:
        raise _refused("quote_info was not made by a TPM")
    if int(parsed.type) != ST_ATTEST_QUOTE:
        raise _refused("quote_info is not a quote")
    if not hmac.compare_digest(bytes(parsed.extraData), nonce):
        raise _refused("the quote was not made for this challenge")
    selected = _selection(parsed.attested.quote.pcrSelect)
    try:
        values = parse_pcrs(pcr_values, "pcr_values")
    except InvalidInput as exc:
        raise MalformedEvidence(exc.message, field="pcr_values") from exc
    if tuple(values) != selected:
        raise _refused(
            "the reported PCR values are not the quoted selection",
            quoted=",".join(map(str, selected)),
        )
    digest = hashlib.sha256(b"".join(values[index] for index in selected)).digest()
    if not hmac.compare_digest(digest, bytes(parsed.attested.quote.pcrDigest)):
        raise _refused("the reported PCR values are not the ones the TPM quoted")
    return values


def _selection(selections: Any) -> tuple[int, ...]:
    """The PCR indices of a TPML_PCR_SELECTION holding one SHA-256 bank, in index order."""
    if int(selections.count) != 1 or int(selections.pcrSelections[0].hash) != ALG_SHA256:
        raise _refused("the quote must cover the SHA-256 bank only")
    bank = selections.pcrSelections[0]
    bitmap = bytes(bank.pcrSelect)[: int(bank.sizeofSelect)]
    indices = tuple(
        byte * 8 + bit for byte, bits in enumerate(bitmap) for bit in range(8) if bits >> bit & 1
    )
    if not indices:
        raise _refused("the quote selects no PCR")
    return indices


def _refused(message: str, **details: Any) -> AttestationFailed:
    return AttestationFailed(RefusalReason.TPM_REFUSED, message, **details)


def quote_fields(evidence: Mapping[str, Any]) -> bool:
    """Whether the device sent measured-boot evidence (all of it, or none, is accepted)."""
    present = [name in evidence for name in ("quote_info", "quote_signature", "pcr_values")]
    if any(present) and not all(present):
        raise MalformedEvidence(
            "a quote needs quote_info, quote_signature and pcr_values together"
        )
    return all(present)

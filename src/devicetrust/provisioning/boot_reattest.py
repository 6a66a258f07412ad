"""Boot re-attestation: a provisioned TPM unit proves its current boot state again, without
re-provisioning, so the posture report and `measured_boot_required` follow reboots and
firmware updates instead of the state at provisioning.

    reattest = BootReattestation(db, clock, attestation)
    issued = reattest.challenge(physical_id)          # nonce + PCRs, single use, 5 minutes
    reattest.submit(physical_id, evidence)            # -> attestation.BootAttestation

The caller (the device API) has already authenticated the unit by its own credential; the
physical id comes from that, never from the body. `submit`, in this order:

1. the challenge is this service's boot challenge, unused, unexpired,
   for this unit                                            provisioning.challenge_invalid
2. the unit has an attestation key bound to its EK: the AK of a quote
   verified when it was provisioned by TPM attestation     attestation.not_bound (409)
3. the presented `ak_public` is exactly that key              provisioning.tpm_refused
4. the quote verifies (`_tpm_quote`: AK signature, TPM-made,
   the nonce, SHA-256 bank, PCR digest)                    provisioning.tpm_refused
5. the PCR values are judged and recorded (`device.boot_attested`, source
   `reattestation`), and the challenge is burnt, in one transaction

A refusal appends one `attestation.refused` audit entry (code, never the evidence) and
changes nothing else. Whatever the verdict, a verified quote is recorded: a boot that
matches no golden measurement is a fact the posture report must show.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devicetrust.attestation import AttestationService, BootAttestation
from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import Conflict, DeviceTrustError
from devicetrust.domain.ids import PhysicalId, parse_physical_id
from devicetrust.provisioning._tpm_objects import TpmKeyRole, parse_public
from devicetrust.provisioning._tpm_quote import verify_quote
from devicetrust.provisioning.errors import AttestationFailed, MalformedEvidence, RefusalReason
from devicetrust.provisioning.methods import CHALLENGE_TTL
from devicetrust.provisioning.refusals import audit_refusal
from devicetrust.provisioning.tpm import evidence_field
from devicetrust.store.database import Database
from devicetrust.store.models import ProvisioningChallengeRow

METHOD = "boot-quote"
REFUSED = "attestation.refused"
NONCE_BYTES = 32


@dataclass(frozen=True, slots=True)
class BootChallenge:
    challenge_id: str
    nonce: bytes
    pcrs: tuple[int, ...]
    expires_at: datetime


class BootReattestation:
    def __init__(self, db: Database, clock: Clock, attestation: AttestationService) -> None:
        self._db = db
        self._clock = clock
        self._attestation = attestation

    def challenge(self, physical_id: PhysicalId | str) -> BootChallenge:
        pid = parse_physical_id(physical_id)
        try:
            self._require_bound(pid)
            now = self._clock.now()
            row = ProvisioningChallengeRow(
                id=str(uuid.uuid4()),
                physical_id=pid,
                method=METHOD,
                expected=secrets.token_bytes(NONCE_BYTES),
                created_at=now,
                expires_at=now + CHALLENGE_TTL,
                used_at=None,
            )
            with self._db.transaction() as session:
                session.add(row)
        except DeviceTrustError as exc:
            self._refused(pid, exc)
            raise
        pcrs = self._attestation.quote_selection()
        return BootChallenge(row.id, row.expected, pcrs, row.expires_at)

    def submit(self, physical_id: PhysicalId | str, evidence: Mapping[str, Any]) -> BootAttestation:
        pid = parse_physical_id(physical_id)
        try:
            return self._submit(pid, evidence)
        except DeviceTrustError as exc:
            self._refused(pid, exc)
            raise

    def _submit(self, pid: PhysicalId, evidence: Mapping[str, Any]) -> BootAttestation:
        challenge_id = evidence.get("challenge_id")
        now = self._clock.now()
        with self._db.transaction() as session:
            row = (
                session.get(ProvisioningChallengeRow, challenge_id, with_for_update=True)
                if isinstance(challenge_id, str) and len(challenge_id) <= 64
                else None
            )
            if (
                row is None
                or row.method != METHOD
                or row.used_at is not None
                or now >= row.expires_at
                or row.physical_id != pid
            ):
                raise AttestationFailed(
                    RefusalReason.CHALLENGE_INVALID, "unknown, used or expired boot challenge"
                )
            bound = self._require_bound(pid)
            if not hmac.compare_digest(evidence_field(evidence, "ak_public"), bound):
                raise AttestationFailed(
                    RefusalReason.TPM_REFUSED,
                    "the quote is not by the attestation key bound at provisioning",
                )
            if "pcr_values" not in evidence:
                raise MalformedEvidence("a boot quote needs pcr_values", field="pcr_values")
            pcrs = verify_quote(
                ak=parse_public(bound, TpmKeyRole.ATTESTATION, "ak_public"),
                attest=evidence_field(evidence, "quote_info"),
                signature=evidence_field(evidence, "quote_signature"),
                pcr_values=evidence["pcr_values"],
                nonce=row.expected,
            )
            row.used_at = now
            return self._attestation.record(pid, pcrs, source="reattestation", ak_public=bound)

    def _require_bound(self, pid: PhysicalId) -> bytes:
        bound = self._attestation.bound_key(pid)
        if bound is None:
            raise Conflict(
                "attestation.not_bound",
                "the unit has no attestation key bound to its TPM: provision it by TPM "
                "attestation with a quote first",
            )
        return bound

    def _refused(self, pid: PhysicalId, exc: DeviceTrustError) -> None:
        audit_refusal(self._db, self._clock, pid, REFUSED, exc)

"""The attestation method protocol: how a device proves who it is (smallstep provisioners).

One module per method (`symmetric.py`, `x509.py`, `tpm.py`) implements `AttestationMethod`.
`ProvisioningService.provision` runs, in this fixed order:

1. rate limit (per source and per physical id, failures only)       provisioning.rate_limited
2. the unit exists                                                  provisioning.unknown_device
3. candidate enrollments for (physical id, method): the unit's individual enrollment of that
   method first, then the group enrollments of that method; disabled or expired ones refuse
                                                                    provisioning.enrollment_*
4. `method.authorize(request, enrollment, context)` for each candidate until one returns an
   `Authorization` (an individual enrollment is never skipped for a group one: its refusal
   is final)                                                        provisioning.<reason>
5. the operational CSR (pki.csr checks) and, when the enrollment requires a hardware key,
   `Authorization.attested_key_sha256` == the CSR's SPKI SHA-256    provisioning.csr_key_mismatch
6. allocation (pure, `allocation.py`)                               provisioning.pool_exhausted
7. the service burns `Authorization.single_use` (token nonce or challenge) -- a second use
   is refused                                                       provisioning.token_replayed /
                                                                    provisioning.challenge_invalid
8. identity bind/replace, `PkiService.issue_from_csr(..., DEVICE)`, registration recorded.

Contract for a method (what the TPM method in `tpm.py` implements too):

- `kind`: its `AttestationKind`.
- `authorize(request, enrollment, context) -> Authorization`: only *decides*. It reads
  `request.evidence` (its own JSON-like mapping), the enrollment's material and, through
  `context`, the clock and the challenges this service issued. It raises
  `AttestationFailed(RefusalReason.X, ...)` (or `MalformedEvidence`) on refusal. It never
  writes to the database, never burns a nonce itself (it names it in
  `Authorization.single_use`), never builds or signs a certificate, never binds an identity,
  and never puts a secret in an error or in `Authorization.audit`.
- optionally (`ChallengingMethod`) `new_challenge(physical_id, enrollment, evidence)
  -> NewChallenge`, `evidence` being what the device sent with its challenge request (e.g.
  the TPM's `ak_public`; None or empty for x509): what the device must answer (`payload`,
  sent to it) and what the server keeps (`expected`, e.g. the nonce for x509 or SHA-256 of
  a MakeCredential secret for TPM). The service stores
  it (single use, `CHALLENGE_TTL`) and returns its `challenge_id`; `authorize` later finds it
  with `context.challenge(challenge_id)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from devicetrust.domain.ids import PhysicalId
from devicetrust.provisioning.records import AttestationKind, Enrollment

CHALLENGE_TTL = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class RegistrationRequest:
    """One registration attempt as the device sent it (nothing here is trusted yet)."""

    physical_id: PhysicalId  # the registration id the device claims
    method: AttestationKind
    csr: bytes  # PEM or DER PKCS#10 for the operational key
    evidence: Mapping[str, Any] = field(default_factory=dict)  # method-specific
    source: str = "unknown"  # remote address, for rate limiting and audit


@dataclass(frozen=True, slots=True)
class StoredChallenge:
    """A challenge this service issued, as `authorize` sees it."""

    challenge_id: str
    physical_id: PhysicalId
    method: AttestationKind
    expected: bytes  # server-side only: never sent again, never logged
    expires_at: datetime
    used: bool


@dataclass(frozen=True, slots=True)
class NewChallenge:
    payload: Mapping[str, str]  # sent to the device (JSON strings)
    expected: bytes = field(repr=False)  # kept by the server


@dataclass(frozen=True, slots=True)
class SingleUse:
    """A value the service must burn in the provisioning step: a token nonce (kept until
    `expires_at`) or an issued challenge."""

    kind: str  # "nonce" | "challenge"
    value: str  # the nonce, or the challenge id
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Authorization:
    """A method's decision: this device is `physical_id`, admitted by `enrollment_id`.

    The sign options the authority applies: `attested_key_sha256` (the SPKI SHA-256 the
    device proved it holds in hardware, compared with the CSR's when the enrollment requires
    a hardware key), `max_lifetime` (a cap on the operational certificate's life) and
    `boot_pcrs` (the PCR values a verified TPM quote proved, for measured boot)."""

    physical_id: PhysicalId
    enrollment_id: str
    method: AttestationKind
    single_use: SingleUse | None = None
    attested_key_sha256: str | None = None
    max_lifetime: timedelta | None = None
    audit: Mapping[str, str] = field(default_factory=dict)  # no secrets
    # SHA-256 PCR values a TPM quote proved (measured boot); None: no quote was sent
    boot_pcrs: Mapping[int, bytes] | None = None
    boot_ak: bytes | None = None  # the AK that signed that quote (bound to the EK)


class AttestationContext(Protocol):
    """What a method may consult while deciding (read-only)."""

    def now(self) -> datetime: ...

    def challenge(self, challenge_id: str) -> StoredChallenge | None: ...

    def nonce_used(self, nonce: str) -> bool: ...


@runtime_checkable
class AttestationMethod(Protocol):
    @property
    def kind(self) -> AttestationKind: ...

    def authorize(
        self,
        request: RegistrationRequest,
        enrollment: Enrollment,
        context: AttestationContext,
    ) -> Authorization: ...


@runtime_checkable
class ChallengingMethod(AttestationMethod, Protocol):
    def new_challenge(
        self,
        physical_id: PhysicalId,
        enrollment: Enrollment,
        evidence: Mapping[str, Any] | None = None,
    ) -> NewChallenge: ...

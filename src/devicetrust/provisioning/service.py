"""`ProvisioningService`: from an attested registration to a provisioned device.

    challenge(physical_id, method)  a single-use challenge for methods that need one
    provision(request)              the steps of `methods.py`, in that order; returns the
                                    certificate chain, logical name, data-plane endpoint and
                                    policy, or `pending` (manual allocation; poll again)
    approve / list_pending / registration   (`approvals.py`)
    enrollments                     `Enrollments` (create, enable/disable, expiry, ...)
    manifests                       `ManifestOps` (factory keys, signed batch manifests)

Everything that can refuse an attempt runs first, against a read snapshot (on PostgreSQL in
the provisioning's transaction, before its first write): a refusal appends one
`provisioning.refused` audit entry (code, method, source; never evidence) and changes
nothing else. Then, in order: the single-use value (nonce or challenge) is burnt
(a concurrent replay loses there), the identity registry binds or replaces, the CA issues,
and the registration is recorded with its `device.provisioned` event. These steps run in
one transaction (the services' own transactions join it, see `store.database`): a failure
at any step undoes all of them, the single-use value included, so the device may simply try
again. A pool's name is claimed inside it (`_pool`: concurrent devices of one pool take
different names without waiting for each other). Re-provisioning is idempotent: the unit
gets its current assignment back.

Never signs anything itself (the CA does), never lets an attestation method write, and never
records a secret.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import DeviceTrustError, InvalidInput
from devicetrust.domain.ids import PhysicalId, parse_physical_id
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.identity import IdentityService
from devicetrust.pki import PkiService
from devicetrust.pki.csr import verify_csr
from devicetrust.provisioning import _facts
from devicetrust.provisioning._context import SessionContext
from devicetrust.provisioning._pool import PoolHints
from devicetrust.provisioning.admission import AdmissionFor, AdmissionRequest
from devicetrust.provisioning.allocation import Action, decide
from devicetrust.provisioning.approvals import ApprovalOps
from devicetrust.provisioning.assignment import (
    AssignmentOps,
    LifetimeCapFor,
    Plan,
    SourceCheckFor,
    check_source,
    pool_candidates,
)
from devicetrust.provisioning.enrollments import Enrollments
from devicetrust.provisioning.errors import (
    AttestationFailed,
    CsrKeyMismatch,
    EnrollmentRefused,
    RateLimited,
    UnknownDevice,
)
from devicetrust.provisioning.manifest import ManifestOps
from devicetrust.provisioning.methods import (
    CHALLENGE_TTL,
    AttestationMethod,
    Authorization,
    ChallengingMethod,
    RegistrationRequest,
)
from devicetrust.provisioning.ratelimit import FailureLimiter, attempt_keys
from devicetrust.provisioning.records import (
    AttestationKind,
    DataPlane,
    Enrollment,
    EnrollmentKind,
    ProvisioningResult,
    RegistrationStatus,
)
from devicetrust.provisioning.refusals import audit_refusal, check_active, claimed_unit
from devicetrust.provisioning.single_use import SingleUseOps
from devicetrust.provisioning.symmetric import SymmetricKeyMethod
from devicetrust.provisioning.x509 import X509Method
from devicetrust.store.database import Database
from devicetrust.store.models import PhysicalIdentityRow, ProvisioningChallengeRow
from devicetrust.vault import Sealer

REFUSED = "provisioning.refused"
_PROVISIONABLE = frozenset({DeviceState.MANUFACTURED, DeviceState.PROVISIONED, DeviceState.ACTIVE})


@dataclass(frozen=True, slots=True)
class IssuedChallenge:
    challenge_id: str
    physical_id: PhysicalId
    payload: dict[str, str]
    expires_at: datetime


class ProvisioningService(ApprovalOps, AssignmentOps, SingleUseOps):
    def __init__(
        self,
        db: Database,
        clock: Clock,
        identity: IdentityService,
        pki: PkiService,
        sealer: Sealer,
        *,
        methods: Sequence[AttestationMethod] | None = None,
        data_plane: DataPlane | None = None,
        limiter: FailureLimiter | None = None,
        lifetime_cap: LifetimeCapFor | None = None,
        source_check: SourceCheckFor | None = None,
        admission: AdmissionFor | None = None,
        pending_retry_after: int = 30,
    ) -> None:
        self._db = db
        self._clock = clock
        self._identity = identity
        self._pki = pki
        self._data_plane = data_plane or DataPlane()
        self._limiter = limiter or FailureLimiter(clock)
        self._lifetime_cap = lifetime_cap
        self._source_check = source_check
        self._admission = admission
        self._retry_after = pending_retry_after
        self._pool_hints = PoolHints()
        self.enrollments = Enrollments(db, clock, sealer)
        self.manifests = ManifestOps(db, clock, identity)
        chosen = (
            methods
            if methods is not None
            else (
                SymmetricKeyMethod(sealer),
                X509Method(pki, clock),
            )
        )
        self._methods: dict[AttestationKind, AttestationMethod] = {m.kind: m for m in chosen}

    @property
    def methods(self) -> tuple[AttestationKind, ...]:
        return tuple(self._methods)

    # ---- challenge ------------------------------------------------------------------------

    def challenge(
        self,
        physical_id: str,
        method: AttestationKind | str,
        *,
        evidence: Mapping[str, Any] | None = None,
        source: str = "unknown",
    ) -> IssuedChallenge:
        """A single-use challenge (`CHALLENGE_TTL`) for a unit enrolled with `method`;
        `evidence` is what the method needs to build it (TPM: the AK public area)."""
        claimed = str(physical_id)[:64]
        keys = attempt_keys(source, claimed)
        try:
            self._limiter.check(keys)
            pid = parse_physical_id(physical_id)
            kind, chosen = self._method(method)
            if not isinstance(chosen, ChallengingMethod):
                raise InvalidInput(
                    "provisioning.no_challenge", f"{kind.value} attestation takes no challenge"
                )
            now = self._clock.now()
            with self._checks_then_writes(kind):
                with self._db.read() as session:
                    self._require_unit(session, pid)
                    enrollment = self._active_candidates(session, pid, kind, now)[0]
                issued = chosen.new_challenge(pid, enrollment, evidence)
                row = ProvisioningChallengeRow(
                    id=str(uuid.uuid4()),
                    physical_id=pid,
                    method=kind.value,
                    expected=issued.expected,
                    created_at=now,
                    expires_at=now + CHALLENGE_TTL,
                    used_at=None,
                )
                with self._db.transaction() as session:
                    session.add(row)
            # A challenge is a row anyone who knows a physical id can make: each one spends
            # a token of the same buckets as a failure, so they cannot be minted at will.
            self._limiter.failed(keys)
        except DeviceTrustError as exc:
            if not isinstance(exc, RateLimited):
                self._limiter.failed(keys)
            self._refused(
                claimed, str(method), source, exc, action="provisioning.challenge_refused"
            )
            raise
        return IssuedChallenge(row.id, pid, dict(issued.payload), row.expires_at)

    # ---- provision ------------------------------------------------------------------------

    def provision(self, request: RegistrationRequest) -> ProvisioningResult:
        claimed = str(request.physical_id)[:64]
        keys = attempt_keys(request.source, claimed)
        try:
            self._limiter.check(keys)
            with self._checks_then_writes(request.method):
                plan = self._plan(request)
                # One transaction: the burn, the binding, the certificate and the registration
                # commit together (one audit-chain lock), or none of them does.
                with self._db.transaction() as session:
                    session.expire_all()  # what the checks read is read again under the locks
                    self._burn(plan, request, self._queue)
                    if plan.decision.action is Action.PENDING:
                        return ProvisioningResult(
                            plan.physical_id,
                            RegistrationStatus.PENDING,
                            retry_after=self._retry_after,
                        )
                    name = self._assign(plan)
                    issued = self._issue(plan, request)
                    self._record_assigned(plan, request, name, issued)
        except DeviceTrustError as exc:
            if not isinstance(exc, RateLimited):
                self._limiter.failed(keys)
            self._refused(claimed, str(request.method), request.source, exc)
            raise
        return self._result(plan.physical_id, name, issued)

    def _checks_then_writes(self, method: object) -> AbstractContextManager[object]:
        """Where the checks run. On PostgreSQL, in the provisioning's own transaction, before
        its first write: one connection and one BEGIN instead of a read transaction of their
        own beside it (they take no lock and write nothing, so a refusal, which rolls the
        transaction back, still changes nothing). SQLite takes its only writer's lock at
        BEGIN IMMEDIATE, so there they run in a read snapshot first and the lock is held only
        for the writes. So do TPM attempts: the admission check records a verified boot
        quote (`device.boot_attested`), which must outlive a refusal."""
        shared = self._db.is_postgres and method != AttestationKind.TPM.value
        return self._db.transaction() if shared else nullcontext()

    def _plan(self, request: RegistrationRequest) -> Plan:
        """Every check that can refuse, over one read snapshot or the provisioning's
        transaction before its writes (one session and connection: the policy checks' reads
        join it); writes nothing."""
        pid = parse_physical_id(request.physical_id)
        kind, method = self._method(request.method)
        now = self._clock.now()
        with self._db.snapshot(), self._db.read() as session:
            unit = _facts.unit_facts(session, pid)
            if unit is None:
                raise UnknownDevice(f"no physical identity {pid}", physical_id=pid)
            enrollment, authorization = self._attest(session, request, kind, method, now)
            if unit.state not in _PROVISIONABLE:
                raise EnrollmentRefused(
                    "provisioning.unit_not_live",
                    f"unit {pid} is {unit.state.value}: not provisionable",
                )
            csr = verify_csr(request.csr)
            if enrollment.require_hardware_key and (
                authorization.attested_key_sha256 != csr.spki_sha256
            ):
                raise CsrKeyMismatch(
                    "the enrollment requires the CSR's key to be the attested hardware key"
                )
            facts = _facts.gather_for(session, pid, enrollment, now, unit, hints=self._pool_hints)
            decision = decide(enrollment.allocation, facts, replaces=enrollment.replaces)
            # The policy of the enrollment admitting the unit now (its registration may name
            # an older one, or none yet), read once in this snapshot for the three checks.
            check_source(self._source_check, pid, enrollment.name, request.source)
            if self._admission is not None:
                in_tpm = authorization.method is AttestationKind.TPM and (
                    authorization.attested_key_sha256 == csr.spki_sha256
                )
                self._admission(
                    AdmissionRequest(
                        physical_id=pid,
                        enrollment=enrollment.name,
                        public_key=csr.public_key,
                        hardware_attested=in_tpm,
                        boot_pcrs=authorization.boot_pcrs,
                        entry_point="provisioning",
                        boot_ak=authorization.boot_ak,
                    )
                )
            cap = self._lifetime_cap(pid, enrollment.name) if self._lifetime_cap else None
        return Plan(
            pid,
            enrollment,
            authorization,
            decision,
            not unit.registered,
            cap,
            candidates=pool_candidates(facts, decision),
            csr=csr,
        )

    def _attest(
        self,
        session: Session,
        request: RegistrationRequest,
        kind: AttestationKind,
        method: AttestationMethod,
        now: datetime,
    ) -> tuple[Enrollment, Authorization]:
        """The first active candidate enrollment whose method authorises the request. An
        individual enrollment's refusal is final; a group's lets the next group try."""
        context = SessionContext(session, now)
        refusal: DeviceTrustError | None = None
        for enrollment in self._active_candidates(session, request.physical_id, kind, now):
            try:
                return enrollment, method.authorize(request, enrollment, context)
            except AttestationFailed as exc:
                if enrollment.kind is EnrollmentKind.INDIVIDUAL:
                    raise
                refusal = refusal or exc
        assert refusal is not None  # _active_candidates never returns an empty list
        raise refusal

    def _active_candidates(
        self, session: Session, pid: PhysicalId, kind: AttestationKind, now: datetime
    ) -> list[Enrollment]:
        candidates = self.enrollments.candidates(session, pid, kind)
        if not candidates:
            raise EnrollmentRefused(
                "provisioning.no_enrollment", f"no {kind.value} enrollment covers unit {pid}"
            )
        individual = [e for e in candidates if e.kind is EnrollmentKind.INDIVIDUAL]
        for enrollment in individual:
            check_active(enrollment, now)
        if individual:
            return individual
        active = [e for e in candidates if e.active_at(now)]
        if not active:
            check_active(candidates[0], now)
        return active

    # ---- steps ----------------------------------------------------------------------------

    def _method(self, method: AttestationKind | str) -> tuple[AttestationKind, AttestationMethod]:
        try:
            kind = AttestationKind(method)
        except ValueError as exc:
            raise InvalidInput(
                "provisioning.unknown_method",
                f"attestation is one of {', '.join(k.value for k in AttestationKind)}",
            ) from exc
        chosen = self._methods.get(kind)
        if chosen is None:
            raise InvalidInput(
                "provisioning.method_unavailable", f"{kind.value} attestation is not enabled"
            )
        return kind, chosen

    @staticmethod
    def _require_unit(session: Session, pid: PhysicalId) -> PhysicalIdentityRow:
        unit = session.get(PhysicalIdentityRow, pid)
        if unit is None:
            raise UnknownDevice(f"no physical identity {pid}", physical_id=pid)
        return unit

    def _refused(
        self,
        claimed: str,
        method: str,
        source: str,
        exc: DeviceTrustError,
        *,
        action: str = REFUSED,
    ) -> None:
        """One audit entry per refused attempt: who claimed what, from where, and why."""
        audit_refusal(
            self._db, self._clock, claimed_unit(claimed), action, exc,
            method=method[:32], source=source[:64],
        )  # fmt: skip

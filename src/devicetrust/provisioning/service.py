"""`ProvisioningService`: from an attested registration to a provisioned device.

    challenge(physical_id, method)  a single-use challenge for methods that need one
    provision(request)              the steps of `methods.py`, in that order; returns the
                                    certificate chain, logical name, data-plane endpoint and
                                    policy, or `pending` (manual allocation; poll again)
    approve / list_pending / registration   (`approvals.py`)
    enrollments                     `Enrollments` (create, enable/disable, expiry, ...)
    manifests                       `ManifestOps` (factory keys, signed batch manifests)

Everything that can refuse an attempt runs first, against a read snapshot: a refusal
appends one `provisioning.refused` audit entry (code, method, source; never evidence) and
changes nothing else. Then, in order: the single-use value (nonce or challenge) is burnt
(a concurrent replay loses there), the identity registry binds or replaces, the CA issues,
and the registration is recorded with its `device.provisioned` event. These steps run in
one transaction (the services' own transactions join it, see `store.database`): a failure
at any step undoes all of them, the single-use value included, so the device may simply try
again. Re-provisioning is idempotent: the unit gets its current assignment back.

Never signs anything itself (the CA does), never lets an attestation method write, and never
records a secret.
"""

from __future__ import annotations

import itertools
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import replace as dc_replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import Conflict, DeviceTrustError, InvalidInput
from devicetrust.domain.ids import LogicalName, PhysicalId, parse_physical_id
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.identity import IdentityService
from devicetrust.pki import PkiService
from devicetrust.pki.csr import verify_csr
from devicetrust.provisioning import _facts
from devicetrust.provisioning._context import SessionContext
from devicetrust.provisioning.admission import AdmissionFor, AdmissionRequest
from devicetrust.provisioning.allocation import Action, Decision, Facts, PoolPattern, decide
from devicetrust.provisioning.approvals import ApprovalOps
from devicetrust.provisioning.assignment import (
    AssignmentOps,
    LifetimeCapFor,
    Plan,
    SourceCheckFor,
    check_source,
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
    AllocationPolicy,
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
from devicetrust.store.models import (
    PhysicalIdentityRow,
    ProvisioningChallengeRow,
    RegistrationRow,
)
from devicetrust.vault import Sealer

REFUSED = "provisioning.refused"
# Concurrent devices of one pool race for its next free name; the loser decides again.
MAX_POOL_RACES = 64
_RACES = frozenset(
    {"identity.already_bound", "store.constraint_violated", "store.concurrent_change"}
)
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
            plan = self._plan(request)
            # One transaction: the burn, the binding, the certificate and the registration
            # commit together (one audit-chain lock), or none of them does.
            with self._db.transaction():
                self._burn(plan, request, self._queue)
                if plan.decision.action is Action.PENDING:
                    return ProvisioningResult(
                        plan.physical_id, RegistrationStatus.PENDING, retry_after=self._retry_after
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

    def _assign(self, plan: Plan) -> LogicalName:
        """Apply the decision. Concurrent devices of one pool would all pick its next free
        name: each claims the name first (`Database.try_claim`, never waiting) and takes the
        next free one when another provisioning in flight has it. When a race is lost anyway
        (a conflict at the binding), decide again on fresh facts, never retrying a lost
        name, spreading the retries over the first few free names."""
        lost: set[str] = set()
        pool = plan.enrollment.allocation.policy is AllocationPolicy.POOL
        facts: Facts | None = None  # read again only after a lost race
        for attempt in range(MAX_POOL_RACES):
            name = plan.decision.name
            claimable = plan.decision.action in (Action.BIND, Action.REASSIGN)
            if pool and claimable and name and not self._db.try_claim(f"name:{name}"):
                spread = False
            else:
                try:
                    with self._db.savepoint():  # a lost race undoes only this part
                        return self._apply_identity(plan)
                except Conflict as exc:
                    if not pool or exc.code not in _RACES:
                        raise
                spread, facts = True, None
            if name is not None:
                lost.add(name)
            if facts is None:
                with self._db.read() as session:
                    facts = _facts.gather(
                        session, plan.physical_id, plan.enrollment, self._clock.now()
                    )
            decision = self._decide_again(plan, facts, lost, attempt if spread else None)
            plan = dc_replace(plan, decision=decision)
        raise Conflict("provisioning.pool_contended", "the pool is contended: try again")

    @staticmethod
    def _decide_again(plan: Plan, facts: Facts, lost: set[str], spread: int | None) -> Decision:
        facts = dc_replace(facts, taken=facts.taken | lost)
        decision = decide(plan.enrollment.allocation, facts, replaces=plan.enrollment.replaces)
        if spread is not None and decision.action in (Action.BIND, Action.REASSIGN):
            pattern = PoolPattern.parse(plan.enrollment.allocation.pool_pattern or "")
            free = (n for n in pattern.names() if n not in facts.taken)
            choices = list(itertools.islice(free, min(spread + 2, 8)))
            decision = dc_replace(decision, name=secrets.choice(choices))
        return decision

    def _plan(self, request: RegistrationRequest) -> Plan:
        """Every check that can refuse, over one read snapshot (one session and connection:
        the policy checks' reads join it); writes nothing."""
        pid = parse_physical_id(request.physical_id)
        kind, method = self._method(request.method)
        now = self._clock.now()
        with self._db.snapshot(), self._db.read() as session:
            unit = self._require_unit(session, pid)
            enrollment, authorization = self._attest(session, request, kind, method, now)
            if DeviceState(unit.state) not in _PROVISIONABLE:
                raise EnrollmentRefused(
                    "provisioning.unit_not_live", f"unit {pid} is {unit.state}: not provisionable"
                )
            csr = verify_csr(request.csr)
            if enrollment.require_hardware_key and (
                authorization.attested_key_sha256 != csr.spki_sha256
            ):
                raise CsrKeyMismatch(
                    "the enrollment requires the CSR's key to be the attested hardware key"
                )
            registration = session.get(RegistrationRow, pid)
            facts = _facts.gather_for(session, pid, enrollment, now, registration)
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
        return Plan(pid, enrollment, authorization, decision, registration is None, cap)

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
        self, claimed: str, method: str, source: str, exc: DeviceTrustError, *,
        action: str = REFUSED,
    ) -> None:
        """One audit entry per refused attempt: who claimed what, from where, and why."""
        audit_refusal(
            self._db, self._clock, claimed_unit(claimed), action, exc,
            method=method[:32], source=source[:64],
        )  # fmt: skip

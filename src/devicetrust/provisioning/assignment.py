"""Applying an allocation decision: the registry binds (or replaces, or re-assigns), the CA
issues the operational certificate, the registration is recorded with `device.provisioned`,
and the device's answer is assembled (chain, logical name, data-plane endpoint, policy).

Runs only after every check of `service.py` passed and the single-use value was burnt.
Never signs anything itself (the CA does) and never decides a name (allocation does).

A proven unit calling from outside its policy's `allowed_networks` is refused
(`auth.network_not_allowed`, through the injected `SourceCheckFor`).

The certificate's lifetime is the CA's device default, lowered by the attestation method's
cap and by the unit's security policy (`max_certificate_lifetime`). The policy lives in a
layer above this one, so its cap is passed in as a `LifetimeCapFor` (the composition root
gives `policy.CertificateLifetimeCaps`); the cap in force is written into the
`device.provisioned` audit entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace as dc_replace
from datetime import timedelta
from typing import Protocol

from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import Conflict
from devicetrust.domain.events import EventType
from devicetrust.domain.ids import LogicalName, PhysicalId
from devicetrust.identity import IdentityService
from devicetrust.pki import IssuedCertificate, PkiService, Profile
from devicetrust.pki.csr import VerifiedCsr
from devicetrust.provisioning import _facts, _pool
from devicetrust.provisioning._pool import PoolHints
from devicetrust.provisioning.allocation import Action, Decision, Facts, decide
from devicetrust.provisioning.errors import EnrollmentRefused
from devicetrust.provisioning.methods import Authorization, RegistrationRequest
from devicetrust.provisioning.records import (
    AllocationPolicy,
    DataPlane,
    Enrollment,
    ProvisioningResult,
    RegistrationStatus,
)
from devicetrust.store.database import Database
from devicetrust.store.journal import record
from devicetrust.store.models import RegistrationRow


@dataclass(frozen=True, slots=True)
class LifetimeCap:
    """The longest operational certificate a unit may get, and where that limit comes from
    (a policy source such as `fleet`, `enrollment:line-03` or `relaxation:<id>`)."""

    max_lifetime: timedelta
    source: str

    def audit(self) -> dict[str, object]:
        return {
            "max_certificate_lifetime": int(self.max_lifetime.total_seconds()),
            "max_certificate_lifetime_source": self.source[:128],
        }


class LifetimeCapFor(Protocol):
    """The cap for a unit admitted by `enrollment` (its name; None when unknown)."""

    def __call__(self, physical_id: PhysicalId, enrollment: str | None) -> LifetimeCap: ...


class SourceCheckFor(Protocol):
    """Whether a unit admitted by `enrollment` may provision or re-enroll from `source` (the
    peer address); the composition root gives `policy.SourceNetworks`."""

    def __call__(self, physical_id: PhysicalId, enrollment: str | None, source: str) -> bool: ...


NETWORK_NOT_ALLOWED = "auth.network_not_allowed"


def check_source(
    check: SourceCheckFor | None, physical_id: PhysicalId, enrollment: str | None, source: str
) -> None:
    """Refuse a proven unit calling from outside its policy's allowed networks."""
    if check is not None and not check(physical_id, enrollment, source):
        raise EnrollmentRefused(
            NETWORK_NOT_ALLOWED,
            "the device may not provision from this network",
            source=source[:64],
        )


@dataclass(frozen=True, slots=True)
class Plan:
    physical_id: PhysicalId
    enrollment: Enrollment
    authorization: Authorization
    decision: Decision
    first_pending: bool
    cap: LifetimeCap | None = None
    # the pool names to claim in this order, the decided one first (none: no pool name)
    candidates: tuple[LogicalName, ...] = ()
    csr: VerifiedCsr | None = None  # the request's CSR, verified while planning


def pool_candidates(facts: Facts, decision: Decision) -> tuple[LogicalName, ...]:
    """The pool's free names read, when the decision takes the first of them."""
    free = facts.pool_free
    takes_pool_name = decision.action in (Action.BIND, Action.REASSIGN)
    return free if takes_pool_name and free and decision.name == free[0] else ()


def device_actor(physical_id: str) -> str:
    return f"device:{physical_id}"


# Concurrent devices of one pool race for its first free names; a loser decides again.
MAX_POOL_RACES = 64
_RACES = frozenset(
    {"identity.already_bound", "store.constraint_violated", "store.concurrent_change"}
)


class AssignmentOps:
    _db: Database
    _clock: Clock
    _identity: IdentityService
    _pki: PkiService
    _data_plane: DataPlane
    _pool_hints: PoolHints

    def _assign(self, plan: Plan) -> LogicalName:
        """Apply the decision. Concurrent devices of one pool read the same first free names:
        each claims the first of them still free and claimed by no provisioning in flight
        (`_pool.claim`, never waiting) and binds that one. When every candidate is gone, or
        a race is lost anyway (the name was bound meanwhile), decide again on fresh facts,
        never offering a lost name again."""
        lost: set[str] = set()
        pool = plan.enrollment.allocation.policy is AllocationPolicy.POOL
        for _ in range(MAX_POOL_RACES):
            if plan.candidates:
                with self._db.transaction() as session:  # joins the provisioning's
                    name = _pool.claim(
                        session, plan.physical_id, self._clock.now(), plan.candidates
                    )
                if name is None:
                    lost.update(plan.candidates)
                    plan = self._decide_again(plan, lost)
                    continue
                plan = dc_replace(plan, decision=dc_replace(plan.decision, name=name))
            try:
                return self._apply(plan)
            except Conflict as exc:
                if not pool or exc.code not in _RACES:
                    raise
            if plan.decision.name is not None:
                lost.add(plan.decision.name)
            plan = self._decide_again(plan, lost)
        raise Conflict("provisioning.pool_contended", "the pool is contended: try again")

    def _apply(self, plan: Plan) -> LogicalName:
        """A re-assignment unbinds before it binds, so a race lost at its binding must undo
        the unbinding (a savepoint). A binding alone refuses a lost race before it writes
        anything (`identity.already_bound`), so it needs none (two round trips fewer)."""
        if plan.decision.action is Action.REASSIGN:
            with self._db.savepoint():
                return self._apply_identity(plan)
        return self._apply_identity(plan)

    def _decide_again(self, plan: Plan, lost: set[str]) -> Plan:
        with self._db.read() as session:  # joins the provisioning's transaction
            facts = _facts.gather(
                session,
                plan.physical_id,
                plan.enrollment,
                self._clock.now(),
                hints=self._pool_hints,
                skip=lost,
            )
        decision = decide(plan.enrollment.allocation, facts, replaces=plan.enrollment.replaces)
        return dc_replace(plan, decision=decision, candidates=pool_candidates(facts, decision))

    def _apply_identity(self, plan: Plan) -> LogicalName:
        decision, pid = plan.decision, plan.physical_id
        actor = device_actor(pid)
        assert decision.name is not None
        if decision.action is Action.KEEP:
            return decision.name
        if decision.action is Action.REPLACE:
            self._identity.replace(decision.name, pid, actor=actor, reason="replaced")
            return decision.name
        if decision.action is Action.REASSIGN:
            assert decision.current is not None
            self._identity.unbind(decision.current, actor=actor, reason="reassigned")
        # Creates the logical identity when the name is new (most allocated names are).
        self._identity.bind_creating(decision.name, pid, actor=actor, reason="provisioned")
        return decision.name

    def _issue(self, plan: Plan, request: RegistrationRequest) -> IssuedCertificate:
        caps = [plan.authorization.max_lifetime, plan.cap.max_lifetime if plan.cap else None]
        lifetime = min(
            [self._pki.policy.lifetime(Profile.DEVICE), *(c for c in caps if c is not None)]
        )
        return self._pki.issue_from_csr(
            plan.csr or request.csr,
            plan.physical_id,
            Profile.DEVICE,
            actor=device_actor(plan.physical_id),
            lifetime=lifetime,
        )

    def _record_assigned(
        self,
        plan: Plan,
        request: RegistrationRequest,
        name: LogicalName,
        issued: IssuedCertificate,
    ) -> None:
        now = self._clock.now()
        pid = plan.physical_id
        with self._db.transaction() as session:
            # A unit without a registration when planned gets a new row (a concurrent first
            # registration of the same unit loses at its primary key); otherwise it is locked.
            row = (
                None
                if plan.first_pending
                else session.get(RegistrationRow, pid, with_for_update=True)
            )
            if row is None:
                row = RegistrationRow(physical_id=pid, requested_at=now)
                session.add(row)
            row.enrollment_id = plan.enrollment.enrollment_id
            row.status = RegistrationStatus.ASSIGNED.value
            row.logical_name = name
            row.serial = issued.serial_hex
            row.updated_at = now
            record(
                session,
                at=now,
                actor=device_actor(pid),
                event_type=EventType.DEVICE_PROVISIONED,
                subject=pid,
                payload={
                    "physical_id": pid,
                    "logical_name": name,
                    "enrollment": plan.enrollment.name,
                    "method": request.method.value,
                    "allocation": plan.decision.action.value,
                    "serial": issued.serial_hex,
                    "source": request.source[:64],
                    **dict(plan.authorization.audit),
                    **(plan.cap.audit() if plan.cap is not None else {}),
                },
            )

    def _result(
        self, pid: PhysicalId, name: LogicalName, issued: IssuedCertificate
    ) -> ProvisioningResult:
        lifetime = issued.not_after - issued.not_before
        topics = self._data_plane.topics(pid)
        return ProvisioningResult(
            physical_id=pid,
            status=RegistrationStatus.ASSIGNED,
            logical_name=name,
            certificate_pem=issued.pem,
            chain_pem=self._pki.chain_pem_of(issued.issuer_ca_id),
            serial=issued.serial_hex,
            not_after=issued.not_after,
            mqtt_host=self._data_plane.mqtt_host,
            mqtt_port=self._data_plane.mqtt_port,
            topics=topics,
            policy={
                "certificate_lifetime_seconds": int(lifetime.total_seconds()),
                "renew_before_seconds": int(lifetime.total_seconds() / 3),
                "publish": [topics["diagnostics"], topics["telemetry"]],
                "subscribe": [topics["feedback"]],
            },
        )

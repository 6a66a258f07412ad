"""The decisions of issuance that need no database, as pure functions over plain values:
what a request may ask (`check_request`), whether a unit's state allows a profile, and
whether a key may be certified for an owner, given every owner it was certified for.

`issuance.py` reads the database and applies them in the order its docstring gives. Never
touches the database, the clock or a key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from cryptography import x509

from devicetrust.domain.ids import PhysicalId, parse_physical_id
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.pki.csr import VerifiedCsr, verify_csr
from devicetrust.pki.errors import (
    InvalidRequest,
    KeyCompromised,
    KeyInUse,
    KeyReuseRefused,
    UnitNotEligible,
    UnitNotLive,
)
from devicetrust.pki.policy import check_lifetime
from devicetrust.pki.profiles import ProfileRule, rule_for, server_alt_names
from devicetrust.pki.records import CaRole, IssueRequest, KeyReuse, Profile

# A certificate of a key: (physical id or None, profile, revocation reason or None).
KeyOwner = tuple[str | None, str, str | None]

_LIVE_REFUSED = frozenset(
    {DeviceState.SUSPENDED, DeviceState.QUARANTINED, DeviceState.DECOMMISSIONED}
)


@dataclass(frozen=True, slots=True)
class CheckedRequest:
    """A request that passed the checks needing no database."""

    csr: VerifiedCsr
    rule: ProfileRule
    physical_id: PhysicalId | None
    issuer_role: CaRole
    dns_names: Sequence[str]
    ip_addresses: Sequence[str]
    lifetime: timedelta | None
    key_reuse: KeyReuse


def check_request(request: IssueRequest) -> CheckedRequest:
    """The checks that need no database, in `issuance.py`'s order: the CSR (its proof of
    possession first), the profile, the subject arguments, the issuer, the lifetime."""
    csr = request.csr
    verified = csr if isinstance(csr, VerifiedCsr) else verify_csr(csr)
    rule = rule_for(request.profile)
    pid = _check_subject_args(rule, request.physical_id, request.dns_names, request.ip_addresses)
    role = _issuer_role(rule, request.ca_role)
    if request.lifetime is not None:
        check_lifetime(rule.profile, request.lifetime)
    return CheckedRequest(
        csr=verified,
        rule=rule,
        physical_id=pid,
        issuer_role=role,
        dns_names=request.dns_names,
        ip_addresses=request.ip_addresses,
        lifetime=request.lifetime,
        key_reuse=request.key_reuse,
    )


def _check_subject_args(
    rule: ProfileRule,
    physical_id: str | None,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
) -> PhysicalId | None:
    if rule.needs_unit:
        if physical_id is None:
            raise InvalidRequest(f"a {rule.profile.value} certificate needs a physical id")
        if dns_names or ip_addresses:
            raise InvalidRequest("device certificates carry registry names only, no DNS/IP")
        return parse_physical_id(physical_id)
    if physical_id is not None:
        raise InvalidRequest(f"a {rule.profile.value} certificate is not for a device")
    if rule.profile is Profile.SERVER:
        server_alt_names(dns_names, ip_addresses)  # refuse bad names before the registry
    elif dns_names or ip_addresses:
        raise InvalidRequest(f"a {rule.profile.value} certificate carries no DNS/IP names")
    return None


def _issuer_role(rule: ProfileRule, ca_role: CaRole | None) -> CaRole:
    if ca_role is None or ca_role is rule.issuer_role:
        return rule.issuer_role
    if rule.profile is Profile.OCSP_SIGNER and ca_role is CaRole.MANUFACTURING:
        return ca_role
    raise InvalidRequest(f"{rule.profile.value} certificates are not issued by the {ca_role} CA")


def check_unit_state(rule: ProfileRule, physical_id: str, state: DeviceState) -> None:
    if state in rule.unit_states:
        return
    error = UnitNotLive if state in _LIVE_REFUSED else UnitNotEligible
    raise error(
        f"unit {physical_id} is {state.value}: no {rule.profile.value} certificate for it",
        physical_id=physical_id,
        state=state.value,
    )


def judge_key_owner(
    ca_key: bool,
    seen: Sequence[KeyOwner],
    physical_id: str | None,
    profile: Profile,
    key_reuse: KeyReuse,
) -> None:
    """One key, one owner: a key seen on another unit (or on a server, OCSP or CA
    certificate) is refused, as is any key once revoked for keyCompromise."""
    if ca_key:
        raise KeyInUse("that key is a CA key")
    if any(reason == x509.ReasonFlags.key_compromise.value for _, _, reason in seen):
        raise KeyCompromised("that key was revoked for keyCompromise and is never certified again")
    for owner, owner_profile, _ in seen:
        same = owner == physical_id and (owner is not None or owner_profile == profile.value)
        if not same:
            raise KeyInUse("that key is already certified for another owner")
    if seen and key_reuse is KeyReuse.REQUIRE_NEW:
        raise KeyReuseRefused("this request must use a key never certified before")

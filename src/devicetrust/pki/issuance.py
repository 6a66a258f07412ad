"""Issuance from CSRs (device operational, birth, server, OCSP signer), and the unit's current
operational certificate. Renewal and re-issuance build on it in `renewal.py`.

The order of checks is fixed: the CSR's own signature (proof of possession) first, then its
key and what it asks for, then the registry (the unit exists and is in a state the profile
allows), then the names (subject and SANs come from the registry or the operator, never from
the CSR), then key ownership (a key certified for one owner is never certified for another;
a key revoked for keyCompromise never again). Only then is a serial drawn and a certificate
signed, recorded with its `credential.issued` event, and committed.

Never returns a certificate that is not yet recorded, and never puts a name in a certificate
that the registry (or, for servers, the operator) did not give.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from devicetrust.domain.ids import PhysicalId, parse_physical_id
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.pki import _rows
from devicetrust.pki.csr import DeviceKey, check_requested_names, verify_csr
from devicetrust.pki.errors import (
    InvalidRequest,
    KeyCompromised,
    KeyInUse,
    KeyReuseRefused,
    UnitNotEligible,
    UnitNotLive,
)
from devicetrust.pki.policy import check_lifetime
from devicetrust.pki.profiles import (
    ProfileRule,
    device_alt_names,
    device_subject,
    leaf_builder,
    ocsp_signer_subject,
    rule_for,
    server_alt_names,
    server_subject,
)
from devicetrust.pki.records import CaRole, IssuedCertificate, KeyReuse, Profile
from devicetrust.pki.revocation import RevocationOps
from devicetrust.pki.serials import new_serial
from devicetrust.store.models import (
    CertificateAuthorityRow,
    IssuedCertificateRow,
    PhysicalIdentityRow,
)

_LIVE_REFUSED = frozenset(
    {DeviceState.SUSPENDED, DeviceState.QUARANTINED, DeviceState.DECOMMISSIONED}
)


class IssuanceOps(RevocationOps):
    def issue_from_csr(
        self,
        csr: bytes | str,
        physical_id: str | None = None,
        profile: Profile | str = Profile.DEVICE,
        *,
        actor: str,
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
        lifetime: timedelta | None = None,
        key_reuse: KeyReuse = KeyReuse.ALLOW,
        ca_role: CaRole | None = None,
    ) -> IssuedCertificate:
        """Issue a certificate of `profile` for the key in `csr`.

        Device and birth profiles need `physical_id`; server needs `dns_names` and/or
        `ip_addresses`; `ca_role` picks the manufacturing CA for an OCSP signer. The returned
        certificate is already committed to the database."""
        verified = verify_csr(csr)
        rule = rule_for(profile)
        pid = _check_subject_args(rule, physical_id, dns_names, ip_addresses)
        role = _issuer_role(rule, ca_role)
        if lifetime is not None:
            check_lifetime(rule.profile, lifetime)
        now = self._clock.now()
        with self._db.transaction() as session:
            logical_name = None
            if pid is not None:
                unit = _rows.physical_row(session, pid, lock=True)
                check_unit(rule, unit)
                if rule.carries_logical_name:
                    logical_name = _rows.logical_name_of(session, unit.id)
            issuer = _rows.active_ca(session, role)
            subject, alt_names = self._names(rule, pid, logical_name, dns_names, ip_addresses)
            if rule.profile is Profile.OCSP_SIGNER:
                subject = ocsp_signer_subject(_rows.ca_certificate(issuer), f"{now:%Y%m%d%H%M}")
            check_requested_names(verified, subject=subject, alt_names=alt_names)
            check_key_owner(session, verified.spki_sha256, pid, rule.profile, key_reuse)
            row = self._issue(
                session,
                rule=rule,
                issuer=issuer,
                public_key=verified.public_key,
                subject=subject,
                alt_names=alt_names,
                physical_id=pid,
                logical_name=logical_name,
                lifetime=lifetime or self._policy.lifetime(rule.profile),
                at=now,
                actor=actor,
            )
            return _rows.to_issued(row)

    def current_certificate(self, physical_id: str) -> IssuedCertificate | None:
        """The unit's newest valid operational certificate: what a device fetches after a
        re-issuance."""
        now = self._clock.now()
        pid = parse_physical_id(physical_id)
        with self._db.read() as session:
            row = session.execute(
                select(IssuedCertificateRow)
                .where(
                    IssuedCertificateRow.physical_id == pid,
                    IssuedCertificateRow.profile == Profile.DEVICE.value,
                    IssuedCertificateRow.revoked_at.is_(None),
                    IssuedCertificateRow.not_before <= now,
                    IssuedCertificateRow.not_after > now,
                )
                .order_by(IssuedCertificateRow.not_before.desc(), IssuedCertificateRow.id.desc())
                .limit(1)
            ).scalar_one_or_none()
            return _rows.to_issued(row) if row is not None else None

    # ---- steps inside a caller's transaction ---------------------------------------------

    def _issue(
        self,
        session: Session,
        *,
        rule: ProfileRule,
        issuer: CertificateAuthorityRow,
        public_key: DeviceKey,
        subject: x509.Name,
        alt_names: Sequence[x509.GeneralName],
        physical_id: PhysicalId | None,
        logical_name: str | None,
        lifetime: timedelta,
        at: datetime,
        actor: str,
        renewed_from: str | None = None,
    ) -> IssuedCertificateRow:
        builder = leaf_builder(
            rule,
            subject=subject,
            alt_names=alt_names,
            public_key=public_key,
            serial=new_serial(),
            validity=self._validity(at, lifetime, issuer),
            issuer=_rows.ca_certificate(issuer),
            urls=self._urls(issuer),
        )
        return self._sign_and_record(
            session,
            key=self._online_key(issuer),
            builder=builder,
            issuer=issuer,
            profile=rule.profile,
            physical_id=physical_id,
            logical_name=logical_name,
            at=at,
            actor=actor,
            renewed_from=renewed_from,
        )

    @staticmethod
    def _names(
        rule: ProfileRule,
        physical_id: PhysicalId | None,
        logical_name: str | None,
        dns_names: Sequence[str],
        ip_addresses: Sequence[str],
    ) -> tuple[x509.Name, list[x509.GeneralName]]:
        if physical_id is not None:
            name = logical_name if rule.carries_logical_name else None
            return device_subject(physical_id), device_alt_names(physical_id, name)  # type: ignore[arg-type]
        if rule.profile is Profile.SERVER:
            alt_names = server_alt_names(dns_names, ip_addresses)
            return server_subject(alt_names), alt_names
        return x509.Name([]), []


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


def check_unit(rule: ProfileRule, unit: PhysicalIdentityRow) -> None:
    state = DeviceState(unit.state)
    if state in rule.unit_states:
        return
    error = UnitNotLive if state in _LIVE_REFUSED else UnitNotEligible
    raise error(
        f"unit {unit.id} is {state.value}: no {rule.profile.value} certificate for it",
        physical_id=unit.id,
        state=state.value,
    )


def check_key_owner(
    session: Session,
    spki_sha256: str,
    physical_id: str | None,
    profile: Profile,
    key_reuse: KeyReuse,
) -> None:
    """One key, one owner: a key seen on another unit (or on a server, OCSP or CA
    certificate) is refused, as is any key once revoked for keyCompromise."""
    if session.execute(
        select(CertificateAuthorityRow.id).where(CertificateAuthorityRow.spki_sha256 == spki_sha256)
    ).first():
        raise KeyInUse("that key is a CA key")
    seen = session.execute(
        select(
            IssuedCertificateRow.physical_id,
            IssuedCertificateRow.profile,
            IssuedCertificateRow.revocation_reason,
        ).where(IssuedCertificateRow.spki_sha256 == spki_sha256)
    ).all()
    if any(reason == x509.ReasonFlags.key_compromise.value for _, _, reason in seen):
        raise KeyCompromised("that key was revoked for keyCompromise and is never certified again")
    for owner, owner_profile, _ in seen:
        same = owner == physical_id and (owner is not None or owner_profile == profile.value)
        if not same:
            raise KeyInUse("that key is already certified for another owner")
    if seen and key_reuse is KeyReuse.REQUIRE_NEW:
        raise KeyReuseRefused("this request must use a key never certified before")

"""Issuance from CSRs (device operational, birth, server, OCSP signer), one at a time or as a
batch, and the unit's current operational certificate. Renewal and re-issuance build on it in
`renewal.py`.

The order of checks is fixed: the CSR's own signature (proof of possession) first, then its
key and what it asks for, then the registry (the unit exists and is in a state the profile
allows), then the names (subject and SANs come from the registry or the operator, never from
the CSR), then key ownership (a key certified for one owner is never certified for another;
a key revoked for keyCompromise never again). Only then is a serial drawn and a certificate
signed, recorded with its `credential.issued` event, and committed.

A batch is one transaction: every request passes the checks that need no database (CSR,
profile, arguments) before the database is touched, then each request in turn the rest, as
if they were issued one after the other (a key certified earlier in the batch counts). One
refusal refuses the whole batch, names the request's index, and records nothing.

Never returns a certificate that is not yet recorded, and never puts a name in a certificate
that the registry (or, for servers, the operator) did not give.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from devicetrust.domain.errors import DeviceTrustError
from devicetrust.domain.ids import LogicalName, PhysicalId, parse_physical_id
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.pki import _rows
from devicetrust.pki._authority import Issuer
from devicetrust.pki._issuance_rules import (
    CheckedRequest,
    KeyOwner,
    check_request,
    check_unit_state,
    judge_key_owner,
)
from devicetrust.pki.csr import DeviceKey, VerifiedCsr, check_requested_names
from devicetrust.pki.errors import InvalidRequest
from devicetrust.pki.profiles import (
    ProfileRule,
    device_alt_names,
    device_subject,
    leaf_builder,
    ocsp_signer_subject,
    server_alt_names,
    server_subject,
)
from devicetrust.pki.records import CaRole, IssuedCertificate, IssueRequest, KeyReuse, Profile
from devicetrust.pki.revocation import RevocationOps
from devicetrust.pki.serials import new_serial
from devicetrust.store.models import (
    CertificateAuthorityRow,
    IssuedCertificateRow,
    PhysicalIdentityRow,
)
from devicetrust.store.registry import unit_not_found

# Bounds one transaction's locks and memory; a factory line or a fleet renewal sends more
# in several batches.
MAX_BATCH = 1000


class IssuanceOps(RevocationOps):
    def issue_from_csr(
        self,
        csr: bytes | str | VerifiedCsr,
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

        `csr` is PEM or DER, or what `verify_csr` returned for it (a caller that verified
        it already: not parsed and verified twice). Device and birth profiles need
        `physical_id`; server needs `dns_names` and/or
        `ip_addresses`; `ca_role` picks the manufacturing CA for an OCSP signer. The returned
        certificate is already committed to the database."""
        request = IssueRequest(
            csr=csr,
            physical_id=physical_id,
            profile=profile,
            dns_names=dns_names,
            ip_addresses=ip_addresses,
            lifetime=lifetime,
            key_reuse=key_reuse,
            ca_role=ca_role,
        )
        return self._issue_checked([check_request(request)], actor=actor, name_index=False)[0]

    def issue_batch(
        self, requests: Sequence[IssueRequest], *, actor: str
    ) -> list[IssuedCertificate]:
        """Issue every request in one transaction, or none: the first refusal (an error of
        the same type and code as `issue_from_csr` raises, its message and `details["index"]`
        naming the request) leaves nothing recorded. At most `MAX_BATCH` requests; the
        certificates are committed when returned, in the order of the requests."""
        if len(requests) > MAX_BATCH:
            raise InvalidRequest(f"at most {MAX_BATCH} requests in a batch", requests=len(requests))
        checked: list[CheckedRequest] = []
        for index, request in enumerate(requests):
            with _naming(index):
                checked.append(check_request(request))
        return self._issue_checked(checked, actor=actor, name_index=True) if checked else []

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

    def _issue_checked(
        self, checked: Sequence[CheckedRequest], *, actor: str, name_index: bool
    ) -> list[IssuedCertificate]:
        """The database half of issuance, for requests that passed `check_request`: two
        queries for the whole batch (the units; the active CAs with the keys' owners), then per
        request its checks, signature and records, flushed together at commit."""
        now = self._clock.now()
        with self._db.transaction() as session:
            units = _rows.units_for_issuance(
                session, {c.physical_id for c in checked if c.physical_id is not None}
            )
            found = _rows.issuance_lookups(
                session, {c.issuer_role for c in checked}, {c.csr.spki_sha256 for c in checked}
            )
            issuers = self._issuers_for(session, found.active)
            ca_keys, owners = found.ca_keys, found.owners
            rows: list[IssuedCertificateRow] = []
            # Rows are flushed once, at commit, in a few multi-row INSERTs (locking the audit
            # head at the first entry needs nothing flushed before it).
            with session.no_autoflush:
                for index, request in enumerate(checked):
                    with _naming(index if name_index else None):
                        logical_name = _unit_facts(request, units)
                        issuer = issuers.get(request.issuer_role)
                        if issuer is None:
                            raise _rows.no_active_ca(request.issuer_role)
                        spki = request.csr.spki_sha256
                        rows.append(
                            self._issue_one(
                                session,
                                request,
                                issuer,
                                logical_name=logical_name,
                                ca_key=spki in ca_keys,
                                owners=owners.setdefault(spki, []),
                                at=now,
                                actor=actor,
                            )
                        )
        return [_rows.to_issued(row) for row in rows]  # committed: the block has ended

    # ---- steps inside a caller's transaction ---------------------------------------------

    def _issue_one(
        self,
        session: Session,
        request: CheckedRequest,
        issuer: Issuer,
        *,
        logical_name: LogicalName | None,
        ca_key: bool,
        owners: list[KeyOwner],
        at: datetime,
        actor: str,
    ) -> IssuedCertificateRow:
        rule, pid = request.rule, request.physical_id
        subject, alt_names = self._names(
            rule, pid, logical_name, request.dns_names, request.ip_addresses
        )
        if rule.profile is Profile.OCSP_SIGNER:
            subject = ocsp_signer_subject(issuer.certificate, f"{at:%Y%m%d%H%M}")
        check_requested_names(request.csr, subject=subject, alt_names=alt_names)
        judge_key_owner(ca_key, owners, pid, rule.profile, request.key_reuse)
        row = self._issue(
            session,
            rule=rule,
            issuer=issuer,
            public_key=request.csr.public_key,
            subject=subject,
            alt_names=alt_names,
            physical_id=pid,
            logical_name=logical_name,
            lifetime=request.lifetime or self._policy.lifetime(rule.profile),
            at=at,
            actor=actor,
        )
        owners.append((pid, rule.profile.value, None))  # later requests of the batch see it
        return row

    def _issue(
        self,
        session: Session,
        *,
        rule: ProfileRule,
        issuer: CertificateAuthorityRow | Issuer,
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
        if isinstance(issuer, CertificateAuthorityRow):
            issuer = self._issuer_of(issuer)
        builder = leaf_builder(
            rule,
            subject=subject,
            alt_names=alt_names,
            public_key=public_key,
            serial=new_serial(),
            validity=self._validity(at, lifetime, issuer),
            issuer=issuer.certificate,
            urls=issuer.urls,
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


def _unit_facts(
    request: CheckedRequest, units: Mapping[str, tuple[DeviceState, LogicalName | None]]
) -> LogicalName | None:
    """Check the request's unit (if any) and return the logical name its certificate
    carries."""
    if request.physical_id is None:
        return None
    facts = units.get(request.physical_id)
    if facts is None:
        raise unit_not_found(request.physical_id)
    state, logical_name = facts
    check_unit_state(request.rule, request.physical_id, state)
    return logical_name if request.rule.carries_logical_name else None


@contextmanager
def _naming(index: int | None) -> Iterator[None]:
    """In a batch, a refusal says which request it refuses (message and `details`), keeping
    its type and code."""
    try:
        yield
    except DeviceTrustError as exc:
        if index is not None:
            exc.details["index"] = index
            exc.message = f"request {index}: {exc.message}"
            exc.args = (exc.message,)
        raise


def check_unit(rule: ProfileRule, unit: PhysicalIdentityRow) -> None:
    check_unit_state(rule, unit.id, DeviceState(unit.state))


def check_key_owner(
    session: Session,
    spki_sha256: str,
    physical_id: str | None,
    profile: Profile,
    key_reuse: KeyReuse,
) -> None:
    """`judge_key_owner` over what the database holds of the key (one query)."""
    ca_keys, owners = _rows.key_owners(session, [spki_sha256])
    judge_key_owner(
        spki_sha256 in ca_keys, owners.get(spki_sha256, []), physical_id, profile, key_reuse
    )

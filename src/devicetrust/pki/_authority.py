"""The signing core every CA operation goes through: sign a built certificate and record it,
with its audit entry and `credential.issued` event, in the caller's transaction.

An issuing CA's certificate, key URI and validity never change under its id (rotation makes a
new CA with a new id), so what signing needs of a CA is parsed once per id and kept in an
`IssuerCache`; which CA of a role is active is still read in every transaction, so a rotation
by another process applies to the very next certificate. An entry is used only while the
certificate hash read with the active CA's id matches it.

Never returns a certificate that is not yet recorded: the row and the event are added to the
session before the certificate leaves this module, and the caller returns it only after its
transaction has committed. Never signs with a key other than the issuer row's own.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.orm import Session

from devicetrust.domain.clock import Clock
from devicetrust.domain.events import EventType
from devicetrust.pki import _rows
from devicetrust.pki.errors import CaNotInitialised
from devicetrust.pki.keyring import Keyring
from devicetrust.pki.keys import CaKey
from devicetrust.pki.policy import PkiPolicy
from devicetrust.pki.profiles import IssuerUrls, Validity
from devicetrust.pki.records import CaRole, Profile
from devicetrust.pki.serials import serial_key, serial_text
from devicetrust.store.database import Database
from devicetrust.store.journal import record
from devicetrust.store.models import CertificateAuthorityRow, IssuedCertificateRow


@dataclass(frozen=True, slots=True)
class Issuer:
    """What signing under one CA needs, read from its row once: never its private key (the
    keyring keeps that, and may close it)."""

    id: str
    role: CaRole
    key_uri: str
    cert_sha256: str
    certificate: x509.Certificate
    not_before: datetime
    not_after: datetime
    urls: IssuerUrls


class IssuerCache:
    """`Issuer`s by CA id, at most one per role: caching the CA that became active for a role
    drops the one it replaced (a rotation's retired CA signs only CRLs, from its row)."""

    def __init__(self) -> None:
        self._by_id: dict[str, Issuer] = {}
        self._lock = threading.Lock()

    def get(self, ca_id: str, cert_sha256: str) -> Issuer | None:
        issuer = self._by_id.get(ca_id)
        return issuer if issuer is not None and issuer.cert_sha256 == cert_sha256 else None

    def put(self, issuer: Issuer) -> Issuer:
        with self._lock:
            for ca_id in [i.id for i in self._by_id.values() if i.role is issuer.role]:
                del self._by_id[ca_id]
            self._by_id[issuer.id] = issuer
        return issuer


class AuthorityCore:
    """State shared by the CA service mixins."""

    _db: Database
    _clock: Clock
    _keys: Keyring
    _policy: PkiPolicy
    _issuers: IssuerCache

    def _issuer_of(self, row: CertificateAuthorityRow) -> Issuer:
        """The CA of `row`, parsed once per id (see the module docstring)."""
        cached = self._issuers.get(row.id, row.cert_sha256)
        if cached is not None:
            return cached
        return self._issuers.put(
            Issuer(
                id=row.id,
                role=CaRole(row.role),
                key_uri=row.key_uri,
                cert_sha256=row.cert_sha256,
                certificate=_rows.ca_certificate(row),
                not_before=row.not_before,
                not_after=row.not_after,
                urls=self._urls(row),
            )
        )

    def _active_issuers(self, session: Session, roles: Collection[CaRole]) -> dict[CaRole, Issuer]:
        """The active CA of each role that has one: one query, plus one per CA not yet
        cached (after a start or a rotation)."""
        return self._issuers_for(session, _rows.active_ca_ids(session, roles))

    def _issuers_for(
        self, session: Session, active: dict[CaRole, tuple[str, str]]
    ) -> dict[CaRole, Issuer]:
        """The `Issuer` of each active CA read as (id, certificate SHA-256): from the cache,
        or from its row (one query per CA not yet cached)."""
        issuers: dict[CaRole, Issuer] = {}
        for role, (ca_id, cert_sha256) in active.items():
            cached = self._issuers.get(ca_id, cert_sha256)
            issuers[role] = cached or self._issuer_of(_rows.ca_row(session, ca_id))
        return issuers

    def _online_key(self, ca: CertificateAuthorityRow | Issuer) -> CaKey:
        """The key of an issuing or manufacturing CA. The root key is never kept open."""
        if ca.role == CaRole.ROOT.value:
            raise CaNotInitialised(
                "the root key is opened only for one step (rotation, its CRL)", ca_id=ca.id
            )
        return self._keys.online(ca.key_uri)

    def _urls(self, issuer: CertificateAuthorityRow | Issuer) -> IssuerUrls:
        # Certificates issued by the root (CA certificates) are checked by CRL only.
        ocsp = None if issuer.role == CaRole.ROOT.value else self._policy.ocsp_url
        return IssuerUrls(
            crl=self._policy.crl_url(issuer.id),
            ca_issuers=self._policy.ca_issuers_url(issuer.id),
            ocsp=ocsp,
        )

    def _validity(
        self, now: datetime, lifetime: timedelta, issuer: CertificateAuthorityRow | Issuer
    ) -> Validity:
        """Backdated by the clock skew; never outliving the issuer (RFC 5280 §6.1.3 checks
        each certificate's own validity, so a longer leaf would only fail later, silently)."""
        not_before = max(now - self._policy.clock_skew, issuer.not_before)
        not_after = min(now + lifetime, issuer.not_after)
        if not_after <= now:
            raise CaNotInitialised(
                f"the {issuer.role} CA expires too soon to issue; rotate it", ca_id=issuer.id
            )
        return Validity(not_before.replace(microsecond=0), not_after.replace(microsecond=0))

    def _reissue_stale(
        self, session: Session, physical_id: str, *, at: datetime, actor: str
    ) -> tuple[list[IssuedCertificateRow], list[IssuedCertificateRow]]:
        """(new, superseded) certificates of a unit whose logical name changed; provided by
        the issuance operations."""
        raise NotImplementedError

    @staticmethod
    def _sign_and_record(
        session: Session,
        *,
        key: CaKey,
        builder: x509.CertificateBuilder,
        issuer: CertificateAuthorityRow | Issuer,
        profile: Profile,
        physical_id: str | None,
        logical_name: str | None,
        at: datetime,
        actor: str,
        key_uri: str | None = None,
        renewed_from: str | None = None,
    ) -> IssuedCertificateRow:
        certificate = key.sign_certificate(builder)
        der = certificate.public_bytes(Encoding.DER)
        row = IssuedCertificateRow(
            serial=serial_key(certificate.serial_number),
            issuer_ca_id=issuer.id,
            profile=profile.value,
            physical_id=physical_id,
            logical_name=logical_name,
            subject=certificate.subject.rfc4514_string(),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            der=der,
            fingerprint_sha256=_rows.sha256_hex(der),
            spki_sha256=_rows.public_key_sha256(certificate),
            key_uri=key_uri,
            renewed_from=renewed_from,
            issued_at=at,
            issued_by=actor,
        )
        session.add(row)
        record(
            session,
            at=at,
            actor=actor,
            event_type=EventType.CREDENTIAL_ISSUED,
            subject=physical_id or issuer.id,
            payload={
                "serial": serial_text(certificate.serial_number),
                "issuer_ca_id": issuer.id,
                "profile": profile.value,
                "physical_id": physical_id,
                "logical_name": logical_name,
                "not_after": row.not_after.isoformat(),
                "fingerprint_sha256": row.fingerprint_sha256,
                "renewed_from": serial_text(int(renewed_from, 16)) if renewed_from else None,
            },
        )
        return row

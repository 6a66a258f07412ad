"""Certificate revocation lists, one per CA (RFC 5280 §5): built from the recorded
revocations, signed by the CA's key, stored as the CA's latest CRL.

A CRL carries its CRL number (§5.2.3, one more than the last, under a row lock so it only
grows), the authority key identifier (§5.2.1), thisUpdate/nextUpdate, and per entry the
reason code (§5.3.1, left out for `unspecified` as the RFC recommends) and the invalidity
date when known (§5.3.2). An entry stays until one regular CRL after its certificate expired
(§3.3), then drops out. Full CRLs only (no delta CRLs).

CRLs are re-signed after each revocation (`crl_on_revoke`) and by the service's
`refresh_due()` when stale or past the refresh point. The root's CRL is re-signed only when
its key can be opened for the step. Never serves a CRL that was not signed by the CA it
names; never lowers a CRL number.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from devicetrust.domain.errors import DeviceTrustError, NotFound
from devicetrust.domain.events import EventType
from devicetrust.pki import _rows
from devicetrust.pki._authority import AuthorityCore
from devicetrust.pki.keys import CaKey
from devicetrust.pki.profiles import authority_key_id
from devicetrust.pki.records import CaRole, CrlRecord
from devicetrust.store.journal import record
from devicetrust.store.models import CertificateAuthorityRow, CrlRow, IssuedCertificateRow

_log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:pki"

# (serial as 40 hex digits, revoked at, reason name or None, invalidity date or None)
CrlEntry = tuple[str, datetime, str | None, datetime | None]


def build_crl(
    *,
    key: CaKey,
    issuer: x509.Certificate,
    number: int,
    this_update: datetime,
    next_update: datetime,
    entries: Iterable[CrlEntry],
) -> x509.CertificateRevocationList:
    """Sign a full CRL. Linear in the entries: 100k entries take well under a second to build
    (the revoked list goes to the builder in one piece, not one copy per entry)."""
    reasons: dict[str, x509.Extension[x509.CRLReason]] = {}
    revoked: list[x509.RevokedCertificate] = []
    for serial, revoked_at, reason, invalidity in entries:
        extensions: list[x509.Extension[x509.ExtensionType]] = []
        if reason and reason != x509.ReasonFlags.unspecified.value:
            extension = reasons.get(reason)
            if extension is None:
                value = x509.CRLReason(x509.ReasonFlags(reason))
                extension = x509.Extension(value.oid, False, value)
                reasons[reason] = extension
            extensions.append(extension)
        if invalidity is not None:
            date = x509.InvalidityDate(invalidity)
            extensions.append(x509.Extension(date.oid, False, date))
        revoked.append(
            x509.RevokedCertificateBuilder(
                serial_number=int(serial, 16), revocation_date=revoked_at, extensions=extensions
            ).build()
        )
    builder = (
        x509.CertificateRevocationListBuilder(revoked_certificates=revoked)
        .issuer_name(issuer.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(authority_key_id(issuer), critical=False)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    return key.sign_crl(builder)


class CrlOps(AuthorityCore):
    def generate_crl(
        self, ca_id: str, *, root_key: CaKey | None = None, actor: str = SYSTEM_ACTOR
    ) -> CrlRecord:
        """Sign and store a new CRL for the CA now. For the root, its key is opened for this
        step only (or `root_key` is used, and left open for its owner to close)."""
        with self._db.transaction() as session:
            ca = _rows.ca_row(session, ca_id)
            if ca.role != CaRole.ROOT.value:
                row = self._write_crl(session, ca, self._online_key(ca), actor=actor)
            elif root_key is not None:
                row = self._write_crl(session, ca, root_key, actor=actor)
            else:
                with self._keys.offline(ca.key_uri) as key:
                    row = self._write_crl(session, ca, key, actor=actor)
            return _to_record(row)

    def latest_crl(self, ca_id: str) -> bytes:
        """The CA's latest CRL, DER (what `/pki/crl/<ca-id>.crl` serves)."""
        return self.latest_crl_record(ca_id).der

    def latest_crl_record(self, ca_id: str) -> CrlRecord:
        with self._db.read() as session:
            ca = _rows.ca_row(session, ca_id)
            row = session.get(CrlRow, ca.id)
            if row is None:
                raise NotFound("pki.crl_not_found", f"CA {ca.id} has no CRL yet", ca_id=ca.id)
            return _to_record(row)

    def _refresh_crls_due(
        self, now: datetime, *, actor: str
    ) -> tuple[list[str], list[tuple[str, str]]]:
        """Re-sign every unexpired CA's CRL that is stale or past its refresh point; a CA
        whose key cannot be opened now is reported (id, error code), not raised."""
        with self._db.read() as session:
            due = [
                ca_id
                for ca_id, crl in session.execute(
                    select(CertificateAuthorityRow.id, CrlRow)
                    .outerjoin(CrlRow, CrlRow.ca_id == CertificateAuthorityRow.id)
                    .where(CertificateAuthorityRow.not_after > now)
                    .order_by(CertificateAuthorityRow.created_at)
                )
                if crl is None or self._crl_due(crl, now)
            ]
        refreshed: list[str] = []
        skipped: list[tuple[str, str]] = []
        for ca_id in due:
            try:
                self.generate_crl(ca_id, actor=actor)
            except DeviceTrustError as exc:
                _log.warning("CRL of CA %s not refreshed: %s", ca_id, exc.code)
                skipped.append((ca_id, exc.code))
            else:
                refreshed.append(ca_id)
        return refreshed, skipped

    def _crl_due(self, crl: CrlRow, now: datetime) -> bool:
        period = crl.next_update - crl.this_update
        return crl.stale or now >= crl.this_update + period * self._policy.crl_refresh_fraction

    def _refresh_after_revocation(self, ca_ids: Sequence[str], actor: str) -> None:
        """Re-sign the CRLs a committed revocation touched. The root's waits for
        `refresh_due` (its key is offline); a failure leaves the CRL marked stale for the
        next `refresh_due`, and never undoes the revocation."""
        if not self._policy.crl_on_revoke:
            return
        for ca_id in dict.fromkeys(ca_ids):
            try:
                with self._db.transaction() as session:
                    ca = _rows.ca_row(session, ca_id)
                    if ca.role != CaRole.ROOT.value:
                        self._write_crl(session, ca, self._online_key(ca), actor=actor)
            except DeviceTrustError as exc:
                _log.warning("CRL of CA %s left stale after a revocation: %s", ca_id, exc.code)
            except SQLAlchemyError as exc:  # the revocation is committed whatever happens here
                _log.warning("CRL of CA %s left stale after a revocation: %s", ca_id,
                             type(exc).__name__)

    def _write_crl(
        self, session: Session, ca: CertificateAuthorityRow, key: CaKey, *, actor: str
    ) -> CrlRow:
        now = self._clock.now()
        row = session.execute(
            select(CrlRow).where(CrlRow.ca_id == ca.id).with_for_update()
        ).scalar_one_or_none()
        validity = (
            self._policy.root_crl_validity
            if ca.role == CaRole.ROOT.value
            else self._policy.crl_validity
        )
        # Entries stay one full CRL period past their certificate's expiry (RFC 5280 §3.3).
        entries = session.execute(
            select(
                IssuedCertificateRow.serial,
                IssuedCertificateRow.revoked_at,
                IssuedCertificateRow.revocation_reason,
                IssuedCertificateRow.invalidity_date,
            ).where(
                IssuedCertificateRow.issuer_ca_id == ca.id,
                IssuedCertificateRow.revoked_at.is_not(None),
                IssuedCertificateRow.not_after > now - validity,
            )
        )
        number = 1 if row is None else row.crl_number + 1
        this_update = now.replace(microsecond=0)
        next_update = min(this_update + validity, ca.not_after)
        crl = build_crl(
            key=key,
            issuer=_rows.ca_certificate(ca),
            number=number,
            this_update=this_update,
            next_update=next_update,
            entries=((s, r, why, inv) for s, r, why, inv in entries if r is not None),
        )
        der = crl.public_bytes(Encoding.DER)
        if row is None:
            row = CrlRow(ca_id=ca.id)
            session.add(row)
        row.crl_number = number
        row.this_update = this_update
        row.next_update = next_update
        row.entries = len(crl)
        row.der = der
        row.stale = False
        record(
            session,
            at=now,
            actor=actor,
            event_type=EventType.CRL_GENERATED,
            subject=ca.id,
            payload={
                "ca_id": ca.id,
                "crl_number": number,
                "entries": row.entries,
                "next_update": next_update.isoformat(),
            },
        )
        return row


def _to_record(row: CrlRow) -> CrlRecord:
    return CrlRecord(
        ca_id=row.ca_id,
        number=row.crl_number,
        this_update=row.this_update,
        next_update=row.next_update,
        entries=row.entries,
        der=row.der,
    )

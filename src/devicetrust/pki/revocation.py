"""Revocation: by serial, by physical unit, and the hold/release pair used for suspension.

Each revocation is one transaction that marks the certificate revoked (for keyCompromise,
every other unexpired certificate of the same key with it), marks its CA's CRL
stale and records the audit entry and the `credential.revoked` event (payload: serial,
physical id, logical name, reason) that the data plane uses to drop live sessions; the CRL
is re-signed after the commit.

Reasons are RFC 5280 §5.3.1 codes. A certificate on hold (`certificateHold`) may later be
revoked for good with another reason (the original revocation date is kept: it has been
unusable since), or released; any revocation may later become keyCompromise when that is
learnt; a permanent revocation is never undone. Never revokes anything
on bad input, and never releases a hold for a unit that is not in service.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from devicetrust.domain.errors import Conflict
from devicetrust.domain.events import EventType
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.pki import _rows
from devicetrust.pki.errors import AlreadyRevoked, InvalidRequest, UnitNotLive
from devicetrust.pki.profiles import RULES
from devicetrust.pki.records import IssuedCertificate, Profile, parse_reason
from devicetrust.pki.responders import ResponderOps
from devicetrust.pki.serials import parse_serial, serial_text
from devicetrust.store.journal import record
from devicetrust.store.models import CrlRow, IssuedCertificateRow
from devicetrust.store.registry import physical_row

HOLD = x509.ReasonFlags.certificate_hold


class RevocationOps(ResponderOps):
    def revoke(
        self,
        serial: int | str,
        reason: str | x509.ReasonFlags = x509.ReasonFlags.unspecified,
        *,
        actor: str,
        invalidity_date: datetime | None = None,
    ) -> IssuedCertificate:
        """Revoke one certificate (or turn its hold into a permanent revocation)."""
        number = parse_serial(serial)
        flag = parse_reason(reason)
        now = self._clock.now()
        _check_invalidity_date(invalidity_date, now)
        with self._db.transaction() as session:
            row = _rows.cert_row(session, number, lock=True)
            if not self._revoke_row(
                session, row, flag, at=now, actor=actor, invalidity_date=invalidity_date
            ):
                raise AlreadyRevoked(
                    f"certificate {serial_text(number)} is already revoked "
                    f"({row.revocation_reason})",
                    serial=serial_text(number),
                    reason=row.revocation_reason,
                )
            revoked = _rows.to_issued(row)
            touched = [row.issuer_ca_id]
            if flag is x509.ReasonFlags.key_compromise:
                touched += self._revoke_same_key(session, row, at=now, actor=actor)
        self._refresh_after_revocation(touched, actor)
        return revoked

    def revoke_all_for(
        self, physical_id: str, reason: str | x509.ReasonFlags, *, actor: str
    ) -> list[IssuedCertificate]:
        """Revoke every unexpired certificate of a unit (birth certificates included);
        returns those this call changed."""
        flag = parse_reason(reason)
        now = self._clock.now()
        with self._db.transaction() as session:
            unit = physical_row(session, physical_id, lock=True)
            rows = self._revoke_unit(session, unit.id, flag, at=now, actor=actor)
            revoked = [_rows.to_issued(row) for row in rows]
        self._refresh_after_revocation([c.issuer_ca_id for c in revoked], actor)
        return revoked

    def release_hold(self, serial: int | str, *, actor: str) -> IssuedCertificate:
        """Take a certificate off hold: it leaves the next CRL (a full CRL simply omits it;
        removeFromCRL is for delta CRLs, RFC 5280 §5.3.1) and OCSP answers good again."""
        number = parse_serial(serial)
        now = self._clock.now()
        with self._db.transaction() as session:
            row = _rows.cert_row(session, number, lock=True)
            if row.revocation_reason != HOLD.value:
                raise Conflict(
                    "pki.not_on_hold",
                    f"certificate {serial_text(number)} is not on hold",
                    serial=serial_text(number),
                )
            if row.physical_id is not None:
                unit = physical_row(session, row.physical_id, lock=True)
                rule = RULES.get(Profile(row.profile))
                if rule is not None and DeviceState(unit.state) not in rule.unit_states:
                    raise UnitNotLive(
                        f"unit {unit.id} is {unit.state}: its certificates stay on hold",
                        physical_id=unit.id,
                        state=unit.state,
                    )
            self._release_row(session, row, at=now, actor=actor)
            released = _rows.to_issued(row)
            if row.physical_id is not None:
                self._reissue_stale(session, row.physical_id, at=now, actor=actor)
        self._refresh_after_revocation([released.issuer_ca_id], actor)
        return released

    # ---- steps inside a caller's transaction ---------------------------------------------

    def _revoke_unit(
        self,
        session: Session,
        physical_id: str,
        reason: x509.ReasonFlags,
        *,
        at: datetime,
        actor: str,
    ) -> list[IssuedCertificateRow]:
        """Revoke the unit's unexpired certificates; holds become permanent unless `reason`
        is itself a hold. Idempotent: a second call changes nothing."""
        candidates = session.execute(
            select(IssuedCertificateRow)
            .where(
                IssuedCertificateRow.physical_id == physical_id,
                IssuedCertificateRow.not_after > at,
                or_(
                    IssuedCertificateRow.revoked_at.is_(None),
                    IssuedCertificateRow.revocation_reason == HOLD.value,
                ),
            )
            .order_by(IssuedCertificateRow.id)
            .with_for_update()
        ).scalars()
        return [
            row
            for row in list(candidates)
            if self._revoke_row(session, row, reason, at=at, actor=actor)
        ]

    def _revoke_same_key(
        self, session: Session, row: IssuedCertificateRow, *, at: datetime, actor: str
    ) -> list[str]:
        """A compromised key compromises every certificate of it: revoke those too."""
        siblings = session.execute(
            select(IssuedCertificateRow)
            .where(
                IssuedCertificateRow.spki_sha256 == row.spki_sha256,
                IssuedCertificateRow.id != row.id,
                IssuedCertificateRow.not_after > at,
            )
            .order_by(IssuedCertificateRow.id)
            .with_for_update()
        ).scalars()
        flag = x509.ReasonFlags.key_compromise
        return [
            other.issuer_ca_id
            for other in list(siblings)
            if self._revoke_row(
                session, other, flag, at=at, actor=actor, invalidity_date=row.invalidity_date
            )
        ]

    def _release_unit_holds(
        self, session: Session, physical_id: str, *, at: datetime, actor: str, placed_by: str
    ) -> list[IssuedCertificateRow]:
        """Release the unit's unexpired holds that `placed_by` placed (not an operator's)."""
        rows = session.execute(
            select(IssuedCertificateRow)
            .where(
                IssuedCertificateRow.physical_id == physical_id,
                IssuedCertificateRow.not_after > at,
                IssuedCertificateRow.revocation_reason == HOLD.value,
                IssuedCertificateRow.revoked_by == placed_by,
            )
            .with_for_update()
        ).scalars()
        released = list(rows)
        for row in released:
            self._release_row(session, row, at=at, actor=actor)
        return released

    def _revoke_row(
        self,
        session: Session,
        row: IssuedCertificateRow,
        reason: x509.ReasonFlags,
        *,
        at: datetime,
        actor: str,
        invalidity_date: datetime | None = None,
    ) -> bool:
        """Revoke, make a hold permanent, or mark a revoked certificate's key compromised
        (what later refuses that key everywhere); False when there is nothing to change."""
        if row.revoked_at is not None:
            held = row.revocation_reason == HOLD.value
            compromise_news = reason is x509.ReasonFlags.key_compromise and (
                row.revocation_reason != reason.value
            )
            if not compromise_news and (not held or reason is HOLD):
                return False
        previous = row.revocation_reason
        if row.revoked_at is None:
            row.revoked_at = at
        row.revocation_reason = reason.value
        row.invalidity_date = invalidity_date or row.invalidity_date
        row.revoked_by = actor
        _mark_crl_stale(session, [row.issuer_ca_id])
        record(
            session,
            at=at,
            actor=actor,
            event_type=EventType.CREDENTIAL_REVOKED,
            subject=row.physical_id or row.issuer_ca_id,
            payload={
                "serial": serial_text(int(row.serial, 16)),
                "physical_id": row.physical_id,
                "logical_name": row.logical_name,
                "issuer_ca_id": row.issuer_ca_id,
                "profile": row.profile,
                "reason": reason.value,
                "previous_reason": previous,
                "revoked_at": row.revoked_at.isoformat(),
                "fingerprint_sha256": row.fingerprint_sha256,
            },
        )
        return True

    @staticmethod
    def _release_row(
        session: Session, row: IssuedCertificateRow, *, at: datetime, actor: str
    ) -> None:
        held_since = row.revoked_at
        row.revoked_at = None
        row.revocation_reason = None
        row.invalidity_date = None
        row.revoked_by = None
        _mark_crl_stale(session, [row.issuer_ca_id])
        record(
            session,
            at=at,
            actor=actor,
            event_type=EventType.CREDENTIAL_HOLD_RELEASED,
            subject=row.physical_id or row.issuer_ca_id,
            payload={
                "serial": serial_text(int(row.serial, 16)),
                "physical_id": row.physical_id,
                "issuer_ca_id": row.issuer_ca_id,
                "held_since": held_since.isoformat() if held_since else None,
            },
        )


def _mark_crl_stale(session: Session, ca_ids: Sequence[str]) -> None:
    session.execute(update(CrlRow).where(CrlRow.ca_id.in_(list(ca_ids))).values(stale=True))


def _check_invalidity_date(value: datetime | None, now: datetime) -> None:
    """RFC 5280 §5.3.2: when the key is known or suspected compromised, in the past."""
    if value is None:
        return
    if value.tzinfo is None or value > now:
        raise InvalidRequest("the invalidity date is a timezone-aware time, not in the future")

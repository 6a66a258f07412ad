"""Renewal and re-issuance: new certificates that carry on from existing ones.

`renew` replaces an unexpired, unrevoked certificate before it lapses, with a new key (a CSR,
proof of possession checked first) or, when the policy allows, the same key; the old one stays
valid until it expires. `reissue_for_identity_change` (and the auto-revoker) supersede a
unit's operational certificates whose logical name is stale with ones carrying the current
name and the same key, in one transaction, so no valid certificate names an identity the unit
no longer holds.

Never renews a revoked, expired, birth or OCSP-signer certificate, and never re-issues for a
unit that is not in service (its certificates are on hold or revoked; a reactivation catches
up).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.orm import Session

from devicetrust.domain.ids import PhysicalId
from devicetrust.domain.lifecycle import DeviceState
from devicetrust.pki import _rows
from devicetrust.pki.csr import DeviceKey, check_requested_names, verify_csr
from devicetrust.pki.errors import (
    CertificateNotFound,
    InvalidRequest,
    KeyReuseRefused,
    NotRenewable,
)
from devicetrust.pki.issuance import IssuanceOps, check_key_owner, check_unit
from devicetrust.pki.policy import MAX_LIFETIME
from devicetrust.pki.profiles import RULES, ProfileRule, server_subject
from devicetrust.pki.records import CaRole, IssuedCertificate, KeyReuse, Profile
from devicetrust.pki.serials import Serial, parse_serial
from devicetrust.store.models import IssuedCertificateRow
from devicetrust.store.registry import physical_row

_SUPERSEDED = x509.ReasonFlags.superseded


class RenewalOps(IssuanceOps):
    def renew(
        self,
        certificate: int | str | bytes | x509.Certificate,
        csr: bytes | str | None = None,
        *,
        actor: str,
        key_reuse: KeyReuse | None = None,
        max_lifetime: timedelta | None = None,
    ) -> IssuedCertificate:
        """A new certificate replacing an unexpired, unrevoked one of the same profile: with a
        new key (`csr`) or, when the policy allows, the same key. Names are taken afresh from
        the registry (device) or from the old certificate (server); the old one stays valid
        until it expires. Serial as int/hex, or the certificate itself (PEM, DER, object).
        It lives as long as the old one did, or `max_lifetime` (a security policy's cap) if
        that is shorter."""
        verified = verify_csr(csr) if csr is not None else None
        serial, fingerprint = _serial_of(certificate)
        reuse = key_reuse or self._policy.renewal_key_reuse
        now = self._clock.now()
        with self._db.transaction() as session:
            old = _rows.cert_row(session, serial, lock=True)
            if fingerprint is not None and fingerprint != old.fingerprint_sha256:
                raise CertificateNotFound("that certificate was not issued by devicetrust")
            rule = RULES.get(Profile(old.profile))
            if rule is None or not rule.renewable:
                raise NotRenewable(f"{old.profile} certificates are not renewed; issue anew")
            if old.revoked_at is not None or old.not_after <= now:
                raise NotRenewable("only an unexpired, unrevoked certificate is renewed")
            old_certificate = x509.load_der_x509_certificate(old.der)
            logical_name = None
            if old.physical_id is not None:
                unit = physical_row(session, old.physical_id, lock=True)
                check_unit(rule, unit)
                logical_name = _rows.logical_name_of(session, unit.id)
            public_key: DeviceKey
            if verified is None:
                if reuse is KeyReuse.REQUIRE_NEW:
                    raise KeyReuseRefused("renewal policy requires a new key: send a CSR")
                public_key = old_certificate.public_key()  # type: ignore[assignment]
            else:
                if reuse is KeyReuse.REQUIRE_NEW and verified.spki_sha256 == old.spki_sha256:
                    raise KeyReuseRefused("renewal policy requires a new key, not the old one")
                public_key = verified.public_key
            pid = PhysicalId(old.physical_id) if old.physical_id else None
            if rule.profile is Profile.SERVER:
                alt_names = list(_alt_names_of(old_certificate))
                subject = server_subject(alt_names)
            else:
                subject, alt_names = self._names(rule, pid, logical_name, (), ())
            if verified is not None:
                check_requested_names(verified, subject=subject, alt_names=alt_names)
            # Also for the same key: another certificate of it may have been revoked for
            # keyCompromise since this one was issued.
            spki = verified.spki_sha256 if verified is not None else old.spki_sha256
            check_key_owner(session, spki, pid, rule.profile, KeyReuse.ALLOW)
            row = self._issue(
                session,
                rule=rule,
                issuer=_rows.active_ca(session, rule.issuer_role),
                public_key=public_key,
                subject=subject,
                alt_names=alt_names,
                physical_id=pid,
                logical_name=logical_name,
                lifetime=_capped(_lifetime_of(old, rule, self._policy.clock_skew), max_lifetime),
                at=now,
                actor=actor,
                renewed_from=old.serial,
            )
            return _rows.to_issued(row)

    def reissue_for_identity_change(
        self, physical_id: str, *, actor: str, max_lifetime: timedelta | None = None
    ) -> list[IssuedCertificate]:
        """Supersede the unit's operational certificates that carry a stale logical name (or
        none, now that it has one) with new ones for the same key; returns the new ones.
        `max_lifetime`: the unit's security-policy cap, when shorter than the CA default."""
        now = self._clock.now()
        with self._db.transaction() as session:
            unit = physical_row(session, physical_id, lock=True)
            new, superseded = self._reissue_stale(
                session, unit.id, at=now, actor=actor, max_lifetime=max_lifetime
            )
            issued = [_rows.to_issued(row) for row in new]
        self._refresh_after_revocation([row.issuer_ca_id for row in superseded], actor)
        return issued

    # ---- steps inside a caller's transaction ---------------------------------------------

    def _reissue_stale(
        self,
        session: Session,
        physical_id: str,
        *,
        at: datetime,
        actor: str,
        max_lifetime: timedelta | None = None,
    ) -> tuple[list[IssuedCertificateRow], list[IssuedCertificateRow]]:
        unit = physical_row(session, physical_id, lock=True)
        rule = RULES[Profile.DEVICE]
        if DeviceState(unit.state) not in rule.unit_states:
            return [], []  # its certificates are revoked or on hold; nothing to carry over
        name = _rows.logical_name_of(session, unit.id)
        stale = [
            row
            for row in _rows.valid_certs_of(session, unit.id, at, lock=True)
            if row.profile == Profile.DEVICE.value and row.logical_name != name
        ]
        if not stale:
            return [], []
        issuer = _rows.active_ca(session, CaRole.ISSUING)
        subject, alt_names = self._names(rule, PhysicalId(unit.id), name, (), ())
        newest_per_key: dict[str, IssuedCertificateRow] = {}
        for row in stale:  # ascending id: the last one per key is the newest
            newest_per_key[row.spki_sha256] = row
        new = [
            self._issue(
                session,
                rule=rule,
                issuer=issuer,
                public_key=x509.load_der_x509_certificate(row.der).public_key(),  # type: ignore[arg-type]
                subject=subject,
                alt_names=alt_names,
                physical_id=PhysicalId(unit.id),
                logical_name=name,
                lifetime=_capped(self._policy.lifetime(Profile.DEVICE), max_lifetime),
                at=at,
                actor=actor,
                renewed_from=row.serial,
            )
            for row in newest_per_key.values()
        ]
        for row in stale:
            self._revoke_row(session, row, _SUPERSEDED, at=at, actor=actor)
        return new, stale


def _serial_of(
    certificate: int | str | bytes | x509.Certificate,
) -> tuple[Serial, str | None]:
    """(serial, fingerprint when a whole certificate was given)."""
    if isinstance(certificate, bytes):
        try:
            certificate = (
                x509.load_pem_x509_certificate(certificate)
                if b"-----BEGIN" in certificate
                else x509.load_der_x509_certificate(certificate)
            )
        except (ValueError, x509.InvalidVersion) as exc:
            raise InvalidRequest("not an X.509 certificate (PEM or DER)") from exc
    if isinstance(certificate, x509.Certificate):
        der = certificate.public_bytes(Encoding.DER)
        return parse_serial(certificate.serial_number), _rows.sha256_hex(der)
    return parse_serial(certificate), None


def _alt_names_of(certificate: x509.Certificate) -> list[x509.GeneralName]:
    try:
        return list(
            certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        )
    except x509.ExtensionNotFound as exc:
        raise NotRenewable("the certificate has no alternative names to renew") from exc


def _capped(lifetime: timedelta, cap: timedelta | None) -> timedelta:
    return lifetime if cap is None else min(lifetime, cap)


def _lifetime_of(old: IssuedCertificateRow, rule: ProfileRule, skew: timedelta) -> timedelta:
    """The old certificate's lifetime (without its backdate), within the profile's bounds."""
    lifetime = old.not_after - old.not_before - skew
    return min(max(lifetime, timedelta(minutes=5)), MAX_LIFETIME[rule.profile])

"""Delegated OCSP signers (RFC 6960 §4.2.2.2): one short-lived certificate per issuing and
manufacturing CA, with EKU id-kp-OCSPSigning and id-pkix-ocsp-nocheck, whose key is an
encrypted file key (the OCSP responder signs thousands of answers; the CA key stays put).

Owns creating, finding and renewing them. Never certifies a responder key for a CA other than
the one that signs its certificate, and never hands out a signer that is expired or revoked.
"""

from __future__ import annotations

import logging
from datetime import datetime

from cryptography import x509
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from devicetrust.domain.errors import DeviceTrustError, NotFound
from devicetrust.pki import _rows
from devicetrust.pki.crl import CrlOps
from devicetrust.pki.keyring import signer_label
from devicetrust.pki.keys import CaKey, KeyAlgorithm
from devicetrust.pki.profiles import RULES, leaf_builder, ocsp_signer_subject
from devicetrust.pki.records import CaRole, CaStatus, OcspSigner, Profile
from devicetrust.pki.serials import new_serial
from devicetrust.store.models import CertificateAuthorityRow, IssuedCertificateRow


class ResponderOps(CrlOps):
    def ocsp_signer(self, issuer: x509.Certificate | str) -> OcspSigner:
        """The current delegated responder for the CA given by certificate or id; its key is
        opened once and kept open by the keyring."""
        now = self._clock.now()
        with self._db.read() as session:
            if isinstance(issuer, x509.Certificate):
                ca = session.execute(
                    select(CertificateAuthorityRow).where(
                        CertificateAuthorityRow.spki_sha256 == _rows.public_key_sha256(issuer)
                    )
                ).scalar_one_or_none()
                if ca is None:
                    raise NotFound("pki.ca_not_found", "that CA certificate is not one of ours")
            else:
                ca = _rows.ca_row(session, issuer)
            row = _current_signer(session, ca.id, now)
            if row is None or row.key_uri is None:
                raise NotFound(
                    "pki.ocsp_signer_not_found",
                    f"CA {ca.id} has no valid OCSP signer (run refresh_due)",
                    ca_id=ca.id,
                )
            signer = OcspSigner(
                ca_id=ca.id,
                issuer=_rows.ca_certificate(ca),
                certificate=x509.load_der_x509_certificate(row.der),
                key_uri=row.key_uri,
            )
        return signer

    def ocsp_signing_key(self, signer: OcspSigner) -> CaKey:
        """The responder's key (kept open by the keyring until the service closes)."""
        return self._keys.online(signer.key_uri)

    def _issue_ocsp_signer(
        self,
        session: Session,
        ca: CertificateAuthorityRow,
        ca_key: CaKey,
        *,
        at: datetime,
        actor: str,
    ) -> IssuedCertificateRow:
        key = self._keys.new_file_key(signer_label(ca.id), KeyAlgorithm.parse(ca.algorithm))
        key = self._keys.keep(key)
        ca_certificate = _rows.ca_certificate(ca)
        serial = new_serial()
        builder = leaf_builder(
            RULES[Profile.OCSP_SIGNER],
            subject=ocsp_signer_subject(ca_certificate, f"{serial:x}"),
            alt_names=(),
            public_key=key.public_key(),
            serial=serial,
            validity=self._validity(at, self._policy.lifetime(Profile.OCSP_SIGNER), ca),
            issuer=ca_certificate,
            urls=self._urls(ca),
        )
        return self._sign_and_record(
            session,
            key=ca_key,
            builder=builder,
            issuer=ca,
            profile=Profile.OCSP_SIGNER,
            physical_id=None,
            logical_name=None,
            at=at,
            actor=actor,
            key_uri=key.uri,
        )

    def _renew_due_ocsp_signers(
        self, now: datetime, *, actor: str
    ) -> tuple[list[str], list[tuple[str, str]]]:
        """A new signer for each CA whose current one is missing or in the last part of its
        life. Retired CAs keep a signer while certificates they issued are unexpired."""
        lifetime = self._policy.lifetime(Profile.OCSP_SIGNER)
        renew_before = lifetime * self._policy.ocsp_signer_renew_fraction
        with self._db.read() as session:
            cas = session.execute(
                select(CertificateAuthorityRow.id, CertificateAuthorityRow.status).where(
                    CertificateAuthorityRow.role != CaRole.ROOT.value,
                    CertificateAuthorityRow.not_after > now,
                )
            ).all()
            due = []
            for ca_id, status in cas:
                if status == CaStatus.RETIRED.value and not _has_live_certs(session, ca_id, now):
                    continue
                current = _current_signer(session, ca_id, now)
                if current is None or current.not_after - now < renew_before:
                    due.append(ca_id)
        renewed: list[str] = []
        skipped: list[tuple[str, str]] = []
        for ca_id in due:
            try:
                with self._db.transaction() as session:
                    ca = _rows.ca_row(session, ca_id)
                    self._issue_ocsp_signer(session, ca, self._online_key(ca), at=now, actor=actor)
            except DeviceTrustError as exc:
                skipped.append((ca_id, exc.code))
                logging.getLogger(__name__).warning(
                    "OCSP signer of CA %s not renewed: %s", ca_id, exc.code
                )
            else:
                renewed.append(ca_id)
        return renewed, skipped


def _current_signer(session: Session, ca_id: str, now: datetime) -> IssuedCertificateRow | None:
    return session.execute(
        select(IssuedCertificateRow)
        .where(
            IssuedCertificateRow.issuer_ca_id == ca_id,
            IssuedCertificateRow.profile == Profile.OCSP_SIGNER.value,
            IssuedCertificateRow.key_uri.is_not(None),
            IssuedCertificateRow.revoked_at.is_(None),
            IssuedCertificateRow.not_before <= now,
            IssuedCertificateRow.not_after > now,
        )
        .order_by(IssuedCertificateRow.not_after.desc(), IssuedCertificateRow.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _has_live_certs(session: Session, ca_id: str, now: datetime) -> bool:
    return bool(
        session.execute(
            select(
                exists().where(
                    IssuedCertificateRow.issuer_ca_id == ca_id,
                    IssuedCertificateRow.profile != Profile.OCSP_SIGNER.value,
                    IssuedCertificateRow.not_after > now,
                )
            )
        ).scalar()
    )

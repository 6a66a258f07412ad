"""`DatabaseStatusSource`: the `StatusSource` contract (`pki.status`) answered from the CA's
own records, for the OCSP responder and the chain verifier; and the same answer as a column
(`status_column`, read back with `status_from`) for a caller that reads the statuses of a
chain with other rows in one statement (device authentication).

A serial is GOOD only when a certificate with that serial was recorded as issued by the CA
whose key is `issuer`'s key and is not revoked; REVOKED (with time and reason, holds
included) when it was revoked; UNKNOWN otherwise, including for an issuer that is not one of
ours. Never guesses GOOD, and never answers from anything but the database.
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import ScalarSelect, String, bindparam, case, func, literal, select

from devicetrust.pki.serials import serial_key
from devicetrust.pki.status import CertStatus, StatusInfo
from devicetrust.store.database import Database
from devicetrust.store.models import CertificateAuthorityRow, IssuedCertificateRow

_MAX_SERIAL = 1 << 160
_MAX_CACHED_ISSUERS = 256

# Built once: the OCSP responder asks this on every request.
_STATUS = (
    select(IssuedCertificateRow.revoked_at, IssuedCertificateRow.revocation_reason)
    .join(CertificateAuthorityRow, CertificateAuthorityRow.id == IssuedCertificateRow.issuer_ca_id)
    .where(
        IssuedCertificateRow.serial == bindparam("serial"),
        CertificateAuthorityRow.spki_sha256 == bindparam("issuer_key"),
    )
)


# `status_column`'s answers: NULL (no such certificate of that issuer), GOOD, or REVOKED
# followed by the stored reason (empty when none was given).
_GOOD = "good"
_REVOKED = "revoked:"


def issuer_key(issuer: x509.Certificate) -> str:
    """How the CA's records name an issuer: the SHA-256 (hex) of its SubjectPublicKeyInfo."""
    spki = issuer.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def status_params(position: int, issuer_sha256: str, serial: int) -> dict[str, str]:
    """The bind parameters of `status_column(position)`; an impossible serial matches no row
    (UNKNOWN), as in `status_of`."""
    stored = serial_key(serial) if 0 < serial < _MAX_SERIAL else ""
    return {f"serial_{position}": stored, f"issuer_key_{position}": issuer_sha256}


def status_column(position: int) -> ScalarSelect[str | None]:
    """The status of one certificate as a scalar subquery (parameters: `status_params`),
    to read beside other columns; decode it with `status_from`."""
    answer = case(
        (IssuedCertificateRow.revoked_at.is_(None), literal(_GOOD, String)),
        else_=literal(_REVOKED, String) + func.coalesce(IssuedCertificateRow.revocation_reason, ""),
    )
    return (
        select(answer)
        .join(
            CertificateAuthorityRow, CertificateAuthorityRow.id == IssuedCertificateRow.issuer_ca_id
        )
        .where(
            IssuedCertificateRow.serial == bindparam(f"serial_{position}"),
            CertificateAuthorityRow.spki_sha256 == bindparam(f"issuer_key_{position}"),
        )
        .scalar_subquery()
    )


def status_from(serial: int, answer: str | None) -> StatusInfo:
    """A `status_column` answer as a `StatusInfo` (without the revocation time)."""
    if answer is None:
        return StatusInfo(serial=serial, status=CertStatus.UNKNOWN)
    if answer == _GOOD:
        return StatusInfo(serial=serial, status=CertStatus.GOOD)
    reason = answer[len(_REVOKED) :]
    return StatusInfo(
        serial=serial,
        status=CertStatus.REVOKED,
        reason=x509.ReasonFlags(reason) if reason else None,
    )


class DatabaseStatusSource:
    def __init__(self, db: Database) -> None:
        self._db = db
        # issuer certificate (by its DER fingerprint) -> SHA-256 of its public key; a pure
        # function of the certificate, so caching it can never serve a wrong status.
        self._issuer_keys: dict[bytes, str] = {}

    def _issuer_key(self, issuer: x509.Certificate) -> str:
        fingerprint = issuer.fingerprint(hashes.SHA256())
        key = self._issuer_keys.get(fingerprint)
        if key is None:
            key = issuer_key(issuer)
            if len(self._issuer_keys) >= _MAX_CACHED_ISSUERS:
                self._issuer_keys.clear()
            self._issuer_keys[fingerprint] = key
        return key

    def status_of(self, issuer: x509.Certificate, serial: int) -> StatusInfo:
        if not 0 < serial < _MAX_SERIAL:
            return StatusInfo(serial=serial, status=CertStatus.UNKNOWN)
        # The issuer is identified by its key (as OCSP's CertID does, RFC 6960 §4.1.1), so a
        # re-encoded or re-certified copy of the same CA certificate still matches.
        params = {"serial": serial_key(serial), "issuer_key": self._issuer_key(issuer)}
        with self._db.read() as session:
            found = session.execute(_STATUS, params).first()
        if found is None:
            return StatusInfo(serial=serial, status=CertStatus.UNKNOWN)
        revoked_at, reason = found
        if revoked_at is None:
            return StatusInfo(serial=serial, status=CertStatus.GOOD)
        return StatusInfo(
            serial=serial,
            status=CertStatus.REVOKED,
            revoked_at=revoked_at,
            reason=x509.ReasonFlags(reason) if reason else None,
        )

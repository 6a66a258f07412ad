"""`PkiService`: the certificate authority as one service, composed of its operations:

    hierarchy.py    init_hierarchy, rotate_intermediate, CA queries
    external_ca.py  import_external_ca
    issuance.py     issue_from_csr, issue_batch, current_certificate
    renewal.py      renew, reissue_for_identity_change
    revocation.py   revoke, revoke_all_for, release_hold
    responders.py   ocsp_signer, ocsp_signing_key
    crl.py          generate_crl, latest_crl

Every state change is one transaction with its audit entry and outbox event. Receives its
database, clock, keyring and policy; reads no configuration and no time of day itself.
Never returns a certificate that is not yet committed, and never holds the root key open.
"""

from __future__ import annotations

from sqlalchemy import select

from devicetrust.domain.clock import Clock
from devicetrust.domain.ids import parse_physical_id
from devicetrust.pki import _rows
from devicetrust.pki._authority import IssuerCache
from devicetrust.pki.crl import SYSTEM_ACTOR
from devicetrust.pki.errors import InvalidRequest
from devicetrust.pki.external_ca import ExternalCaOps
from devicetrust.pki.keyring import Keyring
from devicetrust.pki.policy import PkiPolicy
from devicetrust.pki.records import IssuedCertificate, Profile, RefreshReport
from devicetrust.pki.serials import parse_serial
from devicetrust.pki.status_store import DatabaseStatusSource
from devicetrust.store.database import Database
from devicetrust.store.models import IssuedCertificateRow


class PkiService(ExternalCaOps):
    def __init__(
        self, db: Database, clock: Clock, keys: Keyring, *, policy: PkiPolicy | None = None
    ) -> None:
        self._db = db
        self._clock = clock
        self._keys = keys
        self._policy = policy or PkiPolicy()
        self._issuers = IssuerCache()
        self._chain_cache: dict[str, str] = {}  # CA id -> chain PEM (immutable per id)

    @property
    def database(self) -> Database:
        return self._db

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def policy(self) -> PkiPolicy:
        return self._policy

    def status_source(self) -> DatabaseStatusSource:
        """The `StatusSource` for the OCSP responder and the chain verifier."""
        return DatabaseStatusSource(self._db)

    def refresh_due(self, *, actor: str = SYSTEM_ACTOR) -> RefreshReport:
        """Periodic upkeep: re-sign stale or ageing CRLs, renew OCSP signers near expiry.
        What cannot be done now (an offline root key) is reported in `skipped`."""
        now = self._clock.now()
        crls, crl_skips = self._refresh_crls_due(now, actor=actor)
        signers, signer_skips = self._renew_due_ocsp_signers(now, actor=actor)
        return RefreshReport(
            crls=tuple(crls), ocsp_signers=tuple(signers), skipped=(*crl_skips, *signer_skips)
        )

    def get_certificate(self, serial: int | str) -> IssuedCertificate:
        number = parse_serial(serial)
        with self._db.read() as session:
            return _rows.to_issued(_rows.cert_row(session, number))

    def list_certificates(
        self,
        *,
        physical_id: str | None = None,
        profile: Profile | None = None,
        include_revoked: bool = True,
        limit: int = 100,
        offset: int = 0,
    ) -> list[IssuedCertificate]:
        """Newest first."""
        if not 1 <= limit <= 1000 or offset < 0:
            raise InvalidRequest("limit is 1-1000 and offset is >= 0")
        stmt = select(IssuedCertificateRow).order_by(IssuedCertificateRow.id.desc())
        if physical_id is not None:
            stmt = stmt.where(IssuedCertificateRow.physical_id == parse_physical_id(physical_id))
        if profile is not None:
            stmt = stmt.where(IssuedCertificateRow.profile == Profile(profile).value)
        if not include_revoked:
            stmt = stmt.where(IssuedCertificateRow.revoked_at.is_(None))
        with self._db.read() as session:
            rows = session.execute(stmt.limit(limit).offset(offset)).scalars()
            return [_rows.to_issued(row) for row in rows]

    def close(self) -> None:
        """Close the keys the keyring opened (the password source and HSM connection are the
        caller's)."""
        self._keys.close()

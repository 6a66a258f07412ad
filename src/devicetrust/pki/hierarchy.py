"""The CA hierarchy: create it, rotate its intermediates, import a company CA.

    root CA (self-signed, pathlen 1; key offline: opened only for the step that needs it)
    +-- issuing CA (pathlen 0): operational device, server and OCSP-signer certificates
    |   +-- delegated OCSP signer
    +-- manufacturing CA (pathlen 0): factory birth certificates
        +-- delegated OCSP signer

Every CA gets its first CRL when it is created. A rotated CA is retired, not deleted: it
signs no new certificate but keeps its CRL and OCSP signer until what it issued expires, so
certificates it issued stay verifiable.

Never keeps the root key open after the step that used it, never records a CA whose key does
not match its certificate, and never creates a second active CA of a role.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select
from sqlalchemy.orm import Session

from devicetrust.domain.events import EventType
from devicetrust.pki import _rows
from devicetrust.pki.errors import CaKeyMismatch, HierarchyExists, InvalidRequest
from devicetrust.pki.keyring import key_label
from devicetrust.pki.keys import CaKey, KeyAlgorithm
from devicetrust.pki.profiles import Validity, ca_builder, ca_subject
from devicetrust.pki.records import CaRecord, CaRole, CaStatus, Hierarchy, Profile
from devicetrust.pki.renewal import RenewalOps
from devicetrust.pki.serials import new_serial
from devicetrust.store.journal import record
from devicetrust.store.models import CertificateAuthorityRow

_TITLES = {
    CaRole.ROOT: "Root CA",
    CaRole.ISSUING: "Issuing CA",
    CaRole.MANUFACTURING: "Manufacturing CA",
}


class HierarchyOps(RenewalOps):
    _chain_cache: dict[str, str]

    def init_hierarchy(
        self, *, actor: str, algorithm: KeyAlgorithm = KeyAlgorithm.ECDSA_P256
    ) -> Hierarchy:
        """Create root, issuing and manufacturing CAs, an OCSP signer for each of the latter
        two, and a first CRL for all three. Refused when any CA is already active."""
        if not isinstance(algorithm, KeyAlgorithm):
            algorithm = KeyAlgorithm.parse(str(algorithm))
        self._refuse_existing()
        now = self._clock.now()
        root_id = str(uuid.uuid4())
        root_key = self._keys.new_ca_key(key_label(CaRole.ROOT.value, root_id), algorithm)
        try:
            root_certificate = root_key.sign_certificate(
                ca_builder(
                    subject=ca_subject(self._policy.organization, _TITLES[CaRole.ROOT], root_id),
                    public_key=root_key.public_key(),
                    serial=new_serial(),
                    validity=Validity(
                        (now - self._policy.clock_skew).replace(microsecond=0),
                        (now + self._policy.root_lifetime).replace(microsecond=0),
                    ),
                    path_length=1,
                    issuer=None,
                    urls=None,
                )
            )
            with self._db.transaction() as session:
                self._refuse_existing(session)
                root = self._add_ca(
                    session, root_id, CaRole.ROOT, root_key, root_certificate, None, now, actor
                )
                self._created(session, root, now, actor)
                issuing = self._new_intermediate(
                    session, root, root_key, CaRole.ISSUING, algorithm, now, actor
                )
                manufacturing = self._new_intermediate(
                    session, root, root_key, CaRole.MANUFACTURING, algorithm, now, actor
                )
                for ca in (issuing, manufacturing):
                    self._created(session, ca, now, actor)
                signers = [
                    self._issue_ocsp_signer(session, ca, self._online_key(ca), at=now, actor=actor)
                    for ca in (issuing, manufacturing)
                ]
                self._write_crl(session, root, root_key, actor=actor)
                for ca in (issuing, manufacturing):
                    self._write_crl(session, ca, self._online_key(ca), actor=actor)
                return Hierarchy(
                    root=_rows.to_ca(root),
                    issuing=_rows.to_ca(issuing),
                    manufacturing=_rows.to_ca(manufacturing),
                    ocsp_signers=tuple(_rows.to_issued(row) for row in signers),
                )
        finally:
            root_key.close()

    def rotate_intermediate(
        self,
        root_key: CaKey | None = None,
        *,
        actor: str,
        role: CaRole = CaRole.ISSUING,
        algorithm: KeyAlgorithm | None = None,
    ) -> CaRecord:
        """Replace the active CA of `role` by a new one with a new key, certified by the root.

        `root_key` is the root's key opened by the caller (left open for it to close); when
        omitted, the keyring opens the root key for this step and closes it after. The old CA
        is retired. With no active CA of the role yet (e.g. after importing a company root),
        this creates one."""
        role = CaRole(role)
        if role is CaRole.ROOT:
            raise InvalidRequest("the root is not rotated here; import or init a new one")
        now = self._clock.now()
        with self._db.read() as session:
            root = _rows.active_ca(session, CaRole.ROOT)
            old = _rows.active_ca_or_none(session, role)
            chosen = algorithm or KeyAlgorithm.parse(old.algorithm if old else root.algorithm)
            root_uri, root_spki = root.key_uri, root.spki_sha256
        with self._root_key(root_key, root_uri) as key:
            if _spki_sha256(key) != root_spki:
                raise CaKeyMismatch("that key is not the active root's key")
            with self._db.transaction() as session:
                root = _rows.active_ca(session, CaRole.ROOT)
                old = _rows.active_ca_or_none(session, role, lock=True)
                if old is not None:
                    old.status = CaStatus.RETIRED.value
                    old.retired_at = now
                    session.flush()  # the partial unique index allows one active CA per role
                new = self._new_intermediate(session, root, key, role, chosen, now, actor)
                self._issue_ocsp_signer(session, new, self._online_key(new), at=now, actor=actor)
                self._write_crl(session, new, self._online_key(new), actor=actor)
                record(
                    session,
                    at=now,
                    actor=actor,
                    event_type=EventType.CA_ROTATED,
                    subject=new.id,
                    payload={
                        "role": role.value,
                        "new_ca_id": new.id,
                        "old_ca_id": old.id if old else None,
                        "subject": new.subject,
                        "algorithm": new.algorithm,
                        "not_after": new.not_after.isoformat(),
                    },
                )
                return _rows.to_ca(new)

    # ---- queries -------------------------------------------------------------------------

    def get_ca(self, ca_id: str) -> CaRecord:
        with self._db.read() as session:
            return _rows.to_ca(_rows.ca_row(session, ca_id))

    def active_ca(self, role: CaRole = CaRole.ISSUING) -> CaRecord:
        with self._db.read() as session:
            return _rows.to_ca(_rows.active_ca(session, CaRole(role)))

    def list_cas(self) -> list[CaRecord]:
        """Every CA, active and retired, oldest first (the verifier's trust material)."""
        with self._db.read() as session:
            rows = session.execute(
                select(CertificateAuthorityRow).order_by(
                    CertificateAuthorityRow.created_at, CertificateAuthorityRow.id
                )
            ).scalars()
            return [_rows.to_ca(row) for row in rows]

    def chain_pem(self, role: CaRole = CaRole.ISSUING) -> str:
        """The active CA of `role` and every CA above it, PEM, leaf-side first: what
        `openssl verify -CAfile` takes (`devicetrust ca chain`)."""
        with self._db.read() as session:
            row = _rows.active_ca(session, CaRole(role))
        return self.chain_pem_of(row.id)

    def chain_pem_of(self, ca_id: str) -> str:
        """The chain of the CA `ca_id` (itself first). A CA's certificate and parents never
        change once created, so each chain is read from the database once per process."""
        cache = self._chain_cache
        found = cache.get(ca_id)
        if found is not None:
            return found
        parts: list[str] = []
        with self._db.read() as session:
            row: CertificateAuthorityRow | None = _rows.ca_row(session, ca_id)
            while row is not None:
                parts.append(_rows.to_ca(row).pem)
                if row.external_chain_pem:
                    parts.append(row.external_chain_pem)
                row = _rows.ca_row(session, row.parent_id) if row.parent_id else None
        cache[ca_id] = chain = "".join(parts)
        return chain

    # ---- steps ---------------------------------------------------------------------------

    def _refuse_existing(self, session: Session | None = None) -> None:
        stmt = select(CertificateAuthorityRow.id).where(
            CertificateAuthorityRow.status == CaStatus.ACTIVE.value
        )
        if session is None:
            with self._db.read() as own:
                found = own.execute(stmt).first()
        else:
            found = session.execute(stmt).first()
        if found is not None:
            raise HierarchyExists("a CA hierarchy already exists: rotate its intermediates instead")

    def _new_intermediate(
        self,
        session: Session,
        root: CertificateAuthorityRow,
        root_key: CaKey,
        role: CaRole,
        algorithm: KeyAlgorithm,
        at: datetime,
        actor: str,
    ) -> CertificateAuthorityRow:
        ca_id = str(uuid.uuid4())
        key = self._keys.keep(self._keys.new_ca_key(key_label(role.value, ca_id), algorithm))
        lifetime = (
            self._policy.manufacturing_ca_lifetime
            if role is CaRole.MANUFACTURING
            else self._policy.issuing_ca_lifetime
        )
        builder = ca_builder(
            subject=ca_subject(self._policy.organization, _TITLES[role], ca_id),
            public_key=key.public_key(),
            serial=new_serial(),
            validity=self._validity(at, lifetime, root),
            path_length=0,
            issuer=_rows.ca_certificate(root),
            urls=self._urls(root),
        )
        issued = self._sign_and_record(
            session,
            key=root_key,
            builder=builder,
            issuer=root,
            profile=Profile.CA,
            physical_id=None,
            logical_name=None,
            at=at,
            actor=actor,
        )
        certificate = x509.load_der_x509_certificate(issued.der)
        return self._add_ca(session, ca_id, role, key, certificate, root.id, at, actor)

    @staticmethod
    def _add_ca(
        session: Session,
        ca_id: str,
        role: CaRole,
        key: CaKey,
        certificate: x509.Certificate,
        parent_id: str | None,
        at: datetime,
        actor: str,
        external_chain_pem: str | None = None,
    ) -> CertificateAuthorityRow:
        der = certificate.public_bytes(Encoding.DER)
        row = CertificateAuthorityRow(
            id=ca_id,
            role=role.value,
            status=CaStatus.ACTIVE.value,
            parent_id=parent_id,
            subject=certificate.subject.rfc4514_string(),
            algorithm=key.algorithm.value,
            key_uri=key.uri,
            cert_der=der,
            cert_sha256=_rows.sha256_hex(der),
            spki_sha256=_rows.public_key_sha256(certificate),
            external_chain_pem=external_chain_pem,
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            created_at=at,
            created_by=actor,
        )
        session.add(row)
        session.flush()
        return row

    @staticmethod
    def _created(session: Session, ca: CertificateAuthorityRow, at: datetime, actor: str) -> None:
        record(
            session,
            at=at,
            actor=actor,
            event_type=EventType.CA_CREATED,
            subject=ca.id,
            payload={
                "ca_id": ca.id,
                "role": ca.role,
                "subject": ca.subject,
                "algorithm": ca.algorithm,
                "key_uri": ca.key_uri,
                "parent_id": ca.parent_id,
                "not_after": ca.not_after.isoformat(),
            },
        )

    @contextmanager
    def _root_key(self, given: CaKey | None, uri: str) -> Iterator[CaKey]:
        if given is not None:
            yield given  # the caller's key: the caller closes it
            return
        with self._keys.offline(uri) as key:
            yield key


def _spki_sha256(key: CaKey) -> str:
    spki = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return _rows.sha256_hex(spki)

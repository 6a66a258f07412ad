"""Import of an existing company CA, so devicetrust's hierarchy chains to the company PKI.

    role root:                   the company CA (self-signed or not) becomes devicetrust's
                                 root; `rotate_intermediate` then certifies issuing and
                                 manufacturing CAs under it
    role issuing/manufacturing:  the company CA signs device certificates directly

Checks, in order: the certificate parses, is a CA (basicConstraints CA:TRUE) allowed to sign
certificates and CRLs (keyCertSign, cRLSign: RFC 5280 §4.2.1.3), has room below it
(pathLenConstraint), is within its validity, uses a supported key algorithm, is signed by the
first certificate of `chain_pem` when one is given; then the key opens and is the
certificate's key. Only then is anything written (the key file, then the records).

Never stores an imported key in clear (it becomes an encrypted `file:` key) and never accepts
a clear private key file.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from sqlalchemy import select

from devicetrust.domain.events import EventType
from devicetrust.pki import _rows
from devicetrust.pki.errors import CaCertificateInvalid, CaExists, CaKeyMismatch, InvalidRequest
from devicetrust.pki.hierarchy import HierarchyOps
from devicetrust.pki.keyring import key_label
from devicetrust.pki.keys import CaKey, CaPrivateKey, KeyAlgorithm, KeyNotProtected
from devicetrust.pki.records import CaRecord, CaRole, CaStatus
from devicetrust.store.journal import record
from devicetrust.store.models import CertificateAuthorityRow


class ExternalCaOps(HierarchyOps):
    def import_external_ca(
        self,
        certificate_pem: bytes | str,
        *,
        role: CaRole,
        actor: str,
        key_uri: str | None = None,
        key_pem: bytes | None = None,
        key_pem_password: bytes | bytearray | None = None,
        chain_pem: bytes | str | None = None,
    ) -> CaRecord:
        """Record a company CA as the active CA of `role` (retiring the previous one).

        The key is either already where it will stay (`key_uri`: `pkcs11:` or a devicetrust
        `file:` key) or an encrypted PKCS#8 PEM with its password, which is re-protected as
        a devicetrust key file."""
        role = CaRole(role)
        now = self._clock.now()
        certificate = _parse_one(certificate_pem)
        chain = _parse_chain(chain_pem)
        algorithm = _check_ca_certificate(certificate, role, chain, now)
        spki = _spki_der(certificate.public_key())
        with self._db.transaction() as session:
            if session.execute(
                select(CertificateAuthorityRow.id).where(
                    CertificateAuthorityRow.spki_sha256 == _rows.sha256_hex(spki)
                )
            ).first():
                raise CaExists("a CA with that key is already recorded")
        ca_id = str(uuid.uuid4())
        key = self._import_key(ca_id, role, spki, key_uri, key_pem, key_pem_password)
        try:
            if key.algorithm is not algorithm:
                raise CaKeyMismatch("the key's algorithm differs from the certificate's")
            chain_text = "".join(c.public_bytes(Encoding.PEM).decode("ascii") for c in chain)
            with self._db.transaction() as session:
                old = _rows.active_ca_or_none(session, role, lock=True)
                if old is not None:
                    old.status = CaStatus.RETIRED.value
                    old.retired_at = now
                    session.flush()
                row = self._add_ca(
                    session, ca_id, role, key, certificate, None, now, actor, chain_text
                )
                if role is not CaRole.ROOT:
                    self._issue_ocsp_signer(session, row, key, at=now, actor=actor)
                self._write_crl(session, row, key, actor=actor)
                record(
                    session,
                    at=now,
                    actor=actor,
                    event_type=EventType.CA_IMPORTED,
                    subject=row.id,
                    payload={
                        "ca_id": row.id,
                        "role": role.value,
                        "subject": row.subject,
                        "key_uri": row.key_uri,
                        "replaced_ca_id": old.id if old else None,
                        "not_after": row.not_after.isoformat(),
                    },
                )
                return _rows.to_ca(row)
        finally:
            if role is CaRole.ROOT:
                key.close()  # a root key is never kept open

    def _import_key(
        self,
        ca_id: str,
        role: CaRole,
        spki: bytes,
        key_uri: str | None,
        key_pem: bytes | None,
        password: bytes | bytearray | None,
    ) -> CaKey:
        if (key_uri is None) == (key_pem is None):
            raise InvalidRequest("give the CA key as key_uri or as key_pem, exactly one")
        if key_uri is not None:
            key = (
                self._keys.offline_open(key_uri)
                if role is CaRole.ROOT
                else self._keys.online(key_uri)
            )
            if _spki_der(key.public_key()) != spki:
                if role is CaRole.ROOT:
                    key.close()
                raise CaKeyMismatch("the key at key_uri is not the certificate's key")
            return key
        private_key = _load_encrypted_key(key_pem or b"", password)
        if _spki_der(private_key.public_key()) != spki:
            raise CaKeyMismatch("the private key is not the certificate's key")
        key = self._keys.import_private_key(key_label(role.value, ca_id), private_key)
        return key if role is CaRole.ROOT else self._keys.keep(key)


def _parse_one(data: bytes | str) -> x509.Certificate:
    raw = data.encode("ascii", errors="replace") if isinstance(data, str) else bytes(data)
    try:
        if b"-----BEGIN" in raw:
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except (ValueError, x509.InvalidVersion) as exc:
        raise CaCertificateInvalid("not an X.509 certificate (PEM or DER)") from exc


def _parse_chain(data: bytes | str | None) -> list[x509.Certificate]:
    if data is None:
        return []
    raw = data.encode("ascii", errors="replace") if isinstance(data, str) else bytes(data)
    try:
        return x509.load_pem_x509_certificates(raw)
    except (ValueError, x509.InvalidVersion) as exc:
        raise CaCertificateInvalid("chain_pem is not a list of PEM certificates") from exc


def _check_ca_certificate(
    certificate: x509.Certificate, role: CaRole, chain: list[x509.Certificate], now: datetime
) -> KeyAlgorithm:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise CaCertificateInvalid(
            "a CA certificate carries basicConstraints and keyUsage (RFC 5280 §4.2.1.9)"
        ) from exc
    except ValueError as exc:
        raise CaCertificateInvalid("the certificate's extensions cannot be read") from exc
    if not constraints.ca:
        raise CaCertificateInvalid("the certificate is not a CA certificate (CA:FALSE)")
    if not (usage.key_cert_sign and usage.crl_sign):
        raise CaCertificateInvalid("the CA certificate does not allow keyCertSign and cRLSign")
    # A root must leave room for devicetrust's intermediates below it.
    needed = 1 if role is CaRole.ROOT else 0
    if constraints.path_length is not None and constraints.path_length < needed:
        raise CaCertificateInvalid(
            f"pathLenConstraint {constraints.path_length} leaves no room for a {role.value} CA"
        )
    if not certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc:
        raise CaCertificateInvalid("the CA certificate is not within its validity period")
    algorithm = KeyAlgorithm.of_public_key(certificate.public_key())
    if chain:
        try:
            certificate.verify_directly_issued_by(chain[0])
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as exc:
            raise CaCertificateInvalid(
                "the CA certificate is not signed by the first certificate of chain_pem"
            ) from exc
    return algorithm


def _load_encrypted_key(pem: bytes, password: bytes | bytearray | None) -> CaPrivateKey:
    if not password:
        raise KeyNotProtected("an imported CA key must be an encrypted PKCS#8 file")
    try:
        key = load_pem_private_key(pem, password=bytes(password))
    except TypeError as exc:
        raise KeyNotProtected("the imported CA key file is not encrypted") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidRequest("the CA key does not open with that password, or is damaged") from exc
    KeyAlgorithm.of_public_key(key.public_key())
    if not isinstance(key, CaPrivateKey):
        raise InvalidRequest("the imported key is not a CA key type")
    return key


def _spki_der(public_key: object) -> bytes:
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined,no-any-return]

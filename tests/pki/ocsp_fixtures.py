"""A test PKI for the OCSP responder and the device verifier: root -> issuing CA -> device
leaves (CN and SAN as devicetrust issues them), a delegated OCSP signer whose key is a real
`file:` `CaKey`, and an in-memory `StatusSource`.

Certificates are built here with `cryptography`, not with the CA service (written in
parallel), so these tests pin the contracts (`StatusSource`, `CaKey`), not its behaviour.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devicetrust.domain.ids import new_physical_id
from devicetrust.pki.keys import CaKey, KekPassword, import_key
from devicetrust.pki.status import CertStatus, StatusInfo
from devicetrust.vault import Vault

SAN_UNSET: list[str] = ["<default>"]


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "devicetrust tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


IssuerKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _hash_for(key: IssuerKey) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _serial() -> int:
    return x509.random_serial_number()


def ca_cert(
    subject: str,
    key: IssuerKey,
    issuer: tuple[x509.Certificate, IssuerKey] | None,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    issuer_name = _name(subject) if issuer is None else issuer[0].subject
    signing_key = key if issuer is None else issuer[1]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), False
        )
    )
    return builder.sign(signing_key, _hash_for(signing_key))


class MemoryStatus:
    """The `StatusSource` contract over a dict: unknown unless recorded."""

    def __init__(self) -> None:
        self._entries: dict[tuple[bytes, int], StatusInfo] = {}
        self.calls = 0

    @staticmethod
    def _issuer_key(issuer: x509.Certificate) -> bytes:
        return issuer.fingerprint(hashes.SHA256())

    def record(self, issuer: x509.Certificate, serial: int) -> None:
        self._entries[self._issuer_key(issuer), serial] = StatusInfo(serial, CertStatus.GOOD)

    def revoke(
        self,
        issuer: x509.Certificate,
        serial: int,
        at: datetime,
        reason: x509.ReasonFlags | None = x509.ReasonFlags.key_compromise,
    ) -> None:
        self._entries[self._issuer_key(issuer), serial] = StatusInfo(
            serial, CertStatus.REVOKED, at.replace(microsecond=0), reason
        )

    def status_of(self, issuer: x509.Certificate, serial: int) -> StatusInfo:
        self.calls += 1
        return self._entries.get(
            (self._issuer_key(issuer), serial), StatusInfo(serial, CertStatus.UNKNOWN)
        )


@dataclass
class TestPki:
    """Root -> issuing CA -> leaves, plus the issuing CA's delegated OCSP signer."""

    now: datetime
    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    issuing_key: ec.EllipticCurvePrivateKey
    issuing: x509.Certificate
    ocsp_signer: x509.Certificate
    ocsp_key: CaKey
    status: MemoryStatus = field(default_factory=MemoryStatus)

    __test__ = False  # not a pytest test class

    def leaf(
        self,
        physical_id: str | None = None,
        logical_name: str | None = "line-03-left-welding-12",
        *,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        eku: list[x509.ObjectIdentifier] | None = None,
        san_uris: list[str] = SAN_UNSET,
        common_name: str | None = None,
        digital_signature: bool = True,
        issuer: tuple[x509.Certificate, IssuerKey] | None = None,
        record: bool = True,
    ) -> x509.Certificate:
        """A device certificate as the CA issues it; each keyword bends one property."""
        pid = physical_id or new_physical_id()
        if san_uris is SAN_UNSET:
            san_uris = [f"urn:uuid:{pid}"]
            if logical_name is not None:
                san_uris.append(f"urn:devicetrust:logical:{logical_name}")
        issuer_cert, issuer_key = issuer or (self.issuing, self.issuing_key)
        device_key = ec.generate_private_key(ec.SECP256R1())
        cn = pid if common_name is None else common_name  # "" leaves the subject empty
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_cert.subject)
            .public_key(device_key.public_key())
            .serial_number(_serial())
            .not_valid_before(not_before or self.now - timedelta(minutes=5))
            .not_valid_after(not_after or self.now + timedelta(hours=24))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=digital_signature), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(eku or [ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
            )
        )
        if san_uris:
            names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in san_uris]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(issuer_key, _hash_for(issuer_key))
        if record:
            self.status.record(issuer_cert, cert.serial_number)
        return cert


def build_pki(directory: Path, now: datetime) -> TestPki:
    """A fresh hierarchy valid around `now`; the OCSP signer key lives in `directory`."""
    now = now.replace(microsecond=0)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = ca_cert(
        "devicetrust test root", root_key, None, now - timedelta(days=1), now + timedelta(days=3650)
    )
    issuing_key = ec.generate_private_key(ec.SECP256R1())
    issuing = ca_cert(
        "devicetrust test issuing CA",
        issuing_key,
        (root, root_key),
        now - timedelta(days=1),
        now + timedelta(days=365),
    )
    signer_private = ec.generate_private_key(ec.SECP256R1())
    ocsp_signer = (
        x509.CertificateBuilder()
        .subject_name(_name("devicetrust test OCSP responder"))
        .issuer_name(issuing.subject)
        .public_key(signer_private.public_key())
        .serial_number(_serial())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuing_key.public_key()), False
        )
        .sign(issuing_key, hashes.SHA256())
    )
    key_path = directory / f"ocsp-{uuid.uuid4().hex}.key.pem"
    password = KekPassword(Vault.from_key(os.urandom(32)))
    ocsp_key = import_key(f"file:{key_path}", signer_private, password=password)
    pki = TestPki(now, root_key, root, issuing_key, issuing, ocsp_signer, ocsp_key)
    pki.status.record(root, issuing.serial_number)
    pki.status.record(issuing, ocsp_signer.serial_number)
    return pki


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)

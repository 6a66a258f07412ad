"""The certificate authority: key backends (`devicetrust.pki.keys`), hierarchy, issuance,
revocation, CRLs, and certificate status for OCSP and chain verification.

    keys = Keyring(data_dir / "ca", password=KekPassword(vault))
    pki = PkiService(db, clock, keys, policy=PkiPolicy(public_url="http://ca.example:8080"))
    pki.init_hierarchy(actor="operator:alice")
    cert = pki.issue_from_csr(csr_pem, physical_id, Profile.DEVICE, actor="operator:alice")
    certs = pki.issue_batch([IssueRequest(csr, pid) for csr, pid in line], actor="factory")
    pki.revoke(cert.serial, "keyCompromise", actor="operator:alice")
    AutoRevoker(pki).run_once()      # follow the identity registry (periodically)
    pki.refresh_due()                # re-sign CRLs, renew OCSP signers (periodically)

Never holds a CA private key in clear outside the process that uses it (see `pki.keys`),
and never returns a certificate the database does not know.
"""

from devicetrust.pki.auto_revoke import AutoRevoker, AutoRevokeReport
from devicetrust.pki.errors import (
    AlreadyRevoked,
    CaCertificateInvalid,
    CaExists,
    CaKeyMismatch,
    CaNotFound,
    CaNotInitialised,
    CertificateNotFound,
    CsrBadSignature,
    CsrForbiddenRequest,
    CsrMalformed,
    CsrWeakSignature,
    HierarchyExists,
    InvalidReason,
    InvalidRequest,
    InvalidSerial,
    KeyCompromised,
    KeyInUse,
    KeyReuseRefused,
    NotRenewable,
    UnitNotEligible,
    UnitNotLive,
    WeakKey,
)
from devicetrust.pki.keyring import Keyring
from devicetrust.pki.policy import PkiPolicy
from devicetrust.pki.records import (
    CaRecord,
    CaRole,
    CaStatus,
    CrlRecord,
    Hierarchy,
    IssuedCertificate,
    IssueRequest,
    KeyReuse,
    OcspSigner,
    Profile,
    RefreshReport,
    parse_reason,
)
from devicetrust.pki.serials import Serial, parse_serial, serial_text
from devicetrust.pki.service import PkiService
from devicetrust.pki.status import CertStatus, StatusInfo, StatusSource
from devicetrust.pki.status_store import DatabaseStatusSource

__all__ = [
    "AlreadyRevoked",
    "AutoRevokeReport",
    "AutoRevoker",
    "CaCertificateInvalid",
    "CaExists",
    "CaKeyMismatch",
    "CaNotFound",
    "CaNotInitialised",
    "CaRecord",
    "CaRole",
    "CaStatus",
    "CertStatus",
    "CertificateNotFound",
    "CrlRecord",
    "CsrBadSignature",
    "CsrForbiddenRequest",
    "CsrMalformed",
    "CsrWeakSignature",
    "DatabaseStatusSource",
    "Hierarchy",
    "HierarchyExists",
    "InvalidReason",
    "InvalidRequest",
    "InvalidSerial",
    "IssueRequest",
    "IssuedCertificate",
    "KeyCompromised",
    "KeyInUse",
    "KeyReuse",
    "KeyReuseRefused",
    "Keyring",
    "NotRenewable",
    "OcspSigner",
    "PkiPolicy",
    "PkiService",
    "Profile",
    "RefreshReport",
    "Serial",
    "StatusInfo",
    "StatusSource",
    "UnitNotEligible",
    "UnitNotLive",
    "WeakKey",
    "parse_reason",
    "parse_serial",
    "serial_text",
]

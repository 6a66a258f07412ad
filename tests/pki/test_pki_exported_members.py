"""The public surface of `devicetrust.pki` is what `__all__` says (the key backends have
their own, `devicetrust.pki.keys`)."""

from __future__ import annotations

import devicetrust.pki


def test_pki_exports() -> None:
    assert sorted(devicetrust.pki.__all__) == sorted(
        [
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
    )
    for name in devicetrust.pki.__all__:
        assert getattr(devicetrust.pki, name) is not None

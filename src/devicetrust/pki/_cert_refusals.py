"""Why a presented device certificate chain was refused: one typed error per reason.

    DeviceTrustError
    +-- Unauthorized
        +-- CertificateRefused  auth.cert_refused        (base; never raised itself)
            +-- CertMalformed   auth.cert_malformed      not X.509 PEM/DER, too many, bad extensions
            +-- CertExpired     auth.cert_expired        leaf or a CA of its chain past notAfter
            +-- CertNotYetValid auth.cert_not_yet_valid  leaf or a CA of its chain before notBefore
            +-- CertWrongUsage  auth.cert_wrong_usage    a CA, no EKU clientAuth, no KU digitalSig.
            +-- CertNoIdentity  auth.cert_no_identity    SAN/CN name no single canonical physical id
            +-- CertUntrusted   auth.cert_untrusted      no valid path to a trust root
            +-- CertRevoked     auth.cert_revoked        leaf or CA revoked (platform state)
            +-- CertUnknown     auth.cert_unknown        the CA has no record of a chain certificate

`code` and `details` are precise, for logs and audit; `message` names the reason but never a
secret. What the remote party is told is `PUBLIC_MESSAGE`, the same for every reason, so a
refusal is no oracle (which check failed, whether a serial exists).
"""

from __future__ import annotations

from typing import Any, ClassVar

from devicetrust.domain.errors import Unauthorized


class CertificateRefused(Unauthorized):
    CODE: ClassVar[str] = "auth.cert_refused"
    PUBLIC_MESSAGE: ClassVar[str] = "certificate authentication failed"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(self.CODE, message, **details)


class CertMalformed(CertificateRefused):
    CODE: ClassVar[str] = "auth.cert_malformed"


class CertExpired(CertificateRefused):
    CODE: ClassVar[str] = "auth.cert_expired"


class CertNotYetValid(CertificateRefused):
    CODE: ClassVar[str] = "auth.cert_not_yet_valid"


class CertWrongUsage(CertificateRefused):
    CODE: ClassVar[str] = "auth.cert_wrong_usage"


class CertNoIdentity(CertificateRefused):
    CODE: ClassVar[str] = "auth.cert_no_identity"


class CertUntrusted(CertificateRefused):
    CODE: ClassVar[str] = "auth.cert_untrusted"


class CertRevoked(CertificateRefused):
    CODE: ClassVar[str] = "auth.cert_revoked"


class CertUnknown(CertificateRefused):
    CODE: ClassVar[str] = "auth.cert_unknown"

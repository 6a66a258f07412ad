"""Re-enrollment authenticated by the device's current operational certificate: EST
simplereenroll over mutual TLS (RFC 7030 §3.3.2, §4.2.2).

`CertificateReenrollment.reenroll(presented_pem, csr, source=...)`, in this order:

1. rate limit, per source address                           provisioning.rate_limited
2. the presented chain verifies (`pki.DeviceCertVerifier`): anchored at the platform's root
   CAs, paths through its issuing CAs only (so a birth certificate from the manufacturing CA
   does not re-enroll), valid now, EKU clientAuth, one physical id, not revoked
                                                            auth.cert_* (`pki.verify`)
3. rate limit, per unit                                     provisioning.rate_limited
   the source inside the unit's allowed networks (policy)   auth.network_not_allowed
   the new key and the unit's boot admitted by its policy (key algorithms, hardware key:
   only the key its TPM certified at provisioning; measured boot: its latest quote still
   matches a golden measurement; `provisioning.AdmissionFor`)   policy.*
4. `PkiService.renew(leaf, csr)`: the CSR verifies, the unit is in service, the certificate
   is unexpired and unrevoked; names come from the registry; the new certificate is recorded
   (and audited, `credential.issued`, renewed from the old serial) before it is returned
                                                            pki.* (`pki.errors`)

The new certificate never outlives the unit's security policy (`max_certificate_lifetime`,
through the injected `LifetimeCapFor`). `renew` keeps the old certificate's lifetime unless
the policy was tightened since: then it renews at the cap (`max_lifetime`, still linked to
the old serial) and a `provisioning.lifetime_capped` audit entry names the old serial and
the cap.

A refusal at any step appends one `provisioning.refused` audit entry (code, method
`est-certificate`, source; never the certificate or the CSR) and changes nothing else. The
TLS handshake has already checked that the client holds the certificate's key; nothing
here trusts the certificate for having passed it. Never issues for a chain it did not verify
itself, and never signs anything (the CA does).
"""

from __future__ import annotations

from cryptography import x509

from devicetrust.domain.clock import Clock
from devicetrust.domain.errors import DeviceTrustError
from devicetrust.domain.ids import PhysicalId
from devicetrust.pki import CaRole, PkiService
from devicetrust.pki.csr import verify_csr
from devicetrust.pki.records import IssuedCertificate
from devicetrust.pki.serials import serial_text
from devicetrust.pki.verify import DeviceCertVerifier
from devicetrust.provisioning.admission import AdmissionFor, AdmissionRequest
from devicetrust.provisioning.assignment import (
    LifetimeCap,
    LifetimeCapFor,
    SourceCheckFor,
    check_source,
    device_actor,
)
from devicetrust.provisioning.errors import RateLimited
from devicetrust.provisioning.ratelimit import FailureLimiter
from devicetrust.provisioning.refusals import audit_refusal
from devicetrust.store.database import Database
from devicetrust.store.journal import append_audit

REFUSED = "provisioning.refused"
METHOD = "est-certificate"
CAPPED = "provisioning.lifetime_capped"


class CertificateReenrollment:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        pki: PkiService,
        *,
        limiter: FailureLimiter | None = None,
        lifetime_cap: LifetimeCapFor | None = None,
        source_check: SourceCheckFor | None = None,
        admission: AdmissionFor | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._pki = pki
        self._limiter = limiter or FailureLimiter(clock)
        self._lifetime_cap = lifetime_cap
        self._source_check = source_check
        self._admission = admission

    def reenroll(self, presented_pem: bytes, csr: bytes, *, source: str) -> IssuedCertificate:
        """The steps of the module docstring; `presented_pem` is the TLS client chain, leaf
        first (only the leaf is used), `csr` the DER or PEM PKCS#10 of the new request."""
        keys = [f"source:{source[:64]}"]
        subject = PhysicalId("unverified")
        try:
            self._limiter.check(keys)
            device = self._verifier().verify_pem(presented_pem)
            subject = device.physical_id
            keys.append(f"device:{subject}")
            self._limiter.check(keys)
            with self._db.snapshot():  # one read of the unit's policy
                check_source(self._source_check, subject, None, source)
                if self._admission is not None:
                    self._admission(
                        AdmissionRequest(
                            physical_id=subject,
                            enrollment=None,
                            public_key=verify_csr(csr).public_key,
                            hardware_attested=False,  # only the provisioned TPM key counts
                            boot_pcrs=None,
                            entry_point="est",
                        )
                    )
                cap = self._lifetime_cap(subject, None) if self._lifetime_cap else None
            return self._renew(device.chain[0], csr, subject, cap)
        except DeviceTrustError as exc:
            if not isinstance(exc, RateLimited):
                self._limiter.failed(keys)
            self._refused(subject, source, exc)
            raise

    def _renew(
        self, leaf: x509.Certificate, csr: bytes, subject: PhysicalId, cap: LifetimeCap | None
    ) -> IssuedCertificate:
        actor = device_actor(subject)
        # What `renew` would give: the old lifetime without its backdate (pki.renewal).
        kept = leaf.not_valid_after_utc - leaf.not_valid_before_utc - self._pki.policy.clock_skew
        if cap is None or kept <= cap.max_lifetime:
            return self._pki.renew(leaf, csr, actor=actor)
        with self._db.transaction() as session:  # the renewal and its note commit together
            issued = self._pki.renew(leaf, csr, actor=actor, max_lifetime=cap.max_lifetime)
            append_audit(
                session,
                at=self._clock.now(),
                actor=actor,
                action=CAPPED,
                subject=subject,
                details={
                    "method": METHOD,
                    "renewed_from": serial_text(leaf.serial_number),
                    "serial": issued.serial_hex,
                    **cap.audit(),
                },
            )
        return issued

    def _verifier(self) -> DeviceCertVerifier:
        cas = self._pki.list_cas()
        roots = [ca.certificate for ca in cas if ca.role is CaRole.ROOT]
        issuing = [ca.certificate for ca in cas if ca.role is CaRole.ISSUING]
        return DeviceCertVerifier(roots, issuing, self._pki.status_source(), self._clock)

    def _refused(self, subject: PhysicalId, source: str, exc: DeviceTrustError) -> None:
        audit_refusal(
            self._db, self._clock, subject, REFUSED, exc, method=METHOD, source=source[:64]
        )

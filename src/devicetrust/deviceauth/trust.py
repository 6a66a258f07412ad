"""The trust material device certificates are verified against, read from the CA.

Anchors are the root CAs (active and retired: a retired root still anchors what it issued
until that expires); intermediates are the issuing CAs (active and retired). Manufacturing
CAs are left out on purpose: a birth certificate proves a unit to provisioning, never to the
data plane. When the platform has no root of its own (a company CA imported as the issuing
CA), the issuing CAs are the anchors.

`status_ttl` (off by default) caches GOOD and REVOKED answers of the CA's status source for
that long (never UNKNOWN), so a busy gateway is not two queries per handshake; a revocation
then takes effect at most `status_ttl` later for new connections.
"""

from __future__ import annotations

from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from devicetrust.deviceauth._cache import TtlCache
from devicetrust.domain.clock import Clock
from devicetrust.pki.records import CaRole
from devicetrust.pki.service import PkiService
from devicetrust.pki.status import CertStatus, StatusInfo, StatusSource
from devicetrust.pki.verify import DeviceCertVerifier


class CachedStatus:
    """A `StatusSource` remembering the CA's answers for a short time."""

    def __init__(self, source: StatusSource, clock: Clock, ttl: timedelta) -> None:
        self._source = source
        self._cache: TtlCache[tuple[bytes, int], StatusInfo] = TtlCache(clock, ttl)

    def status_of(self, issuer: x509.Certificate, serial: int) -> StatusInfo:
        key = (issuer.fingerprint(hashes.SHA256()), serial)
        found = self._cache.get(key, lambda: self._known(issuer, serial))
        return found if found is not None else StatusInfo(serial=serial, status=CertStatus.UNKNOWN)

    def _known(self, issuer: x509.Certificate, serial: int) -> StatusInfo | None:
        info = self._source.status_of(issuer, serial)
        return None if info.status is CertStatus.UNKNOWN else info

    def clear(self) -> None:
        self._cache.clear()


def device_verifier(
    pki: PkiService, clock: Clock, *, status_ttl: timedelta = timedelta(0)
) -> DeviceCertVerifier:
    """A verifier over the CA's current trust material and its revocation state; build a new
    one after a CA rotation or import."""
    cas = pki.list_cas()
    roots = [ca.certificate for ca in cas if ca.role is CaRole.ROOT]
    issuing = [ca.certificate for ca in cas if ca.role is CaRole.ISSUING]
    if not roots:
        roots, issuing = issuing, []
    status: StatusSource = pki.status_source()
    if status_ttl:
        status = CachedStatus(status, clock, status_ttl)
    return DeviceCertVerifier(roots, issuing, status, clock)

"""The trust material device certificates are verified against, read from the CA.

Anchors are the root CAs (active and retired: a retired root still anchors what it issued
until that expires); intermediates are the issuing CAs (active and retired). Manufacturing
CAs are left out on purpose: a birth certificate proves a unit to provisioning, never to the
data plane. When the platform has no root of its own (a company CA imported as the issuing
CA), the issuing CAs are the anchors.

Revocation is never cached: device authentication reads the status of a chain's
certificates at every authentication, with the unit's standing (`mtls_auth`).
"""

from __future__ import annotations

from devicetrust.domain.clock import Clock
from devicetrust.pki.records import CaRole
from devicetrust.pki.service import PkiService
from devicetrust.pki.verify import DeviceCertVerifier


def device_verifier(pki: PkiService, clock: Clock) -> DeviceCertVerifier:
    """A verifier over the CA's current trust material and its revocation state; build a new
    one after a CA rotation or import."""
    cas = pki.list_cas()
    roots = [ca.certificate for ca in cas if ca.role is CaRole.ROOT]
    issuing = [ca.certificate for ca in cas if ca.role is CaRole.ISSUING]
    if not roots:
        roots, issuing = issuing, []
    return DeviceCertVerifier(roots, issuing, pki.status_source(), clock)

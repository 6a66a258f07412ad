"""The verifier and the OCSP responder over what the real CA service issues and records
(`PkiService`, `DatabaseStatusSource`, on SQLite and PostgreSQL): a device certificate from a
CSR maps to its unit and logical name, and a revocation shows in both at once."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from devicetrust.domain import FixedClock
from devicetrust.domain.records import PhysicalIdentity
from devicetrust.pki import Hierarchy, PkiService, Profile
from devicetrust.pki.ocsp import OcspResponder
from devicetrust.pki.verify import CertificateRefused, DeviceCertVerifier
from tests.pki.certs import ec_key, make_csr
from tests.pki.conftest import ACTOR, NAME


def test_issued_device_certificate_verifies_until_revoked(
    pki: PkiService, hierarchy: Hierarchy, bound_unit: PhysicalIdentity, clock: FixedClock
) -> None:
    issued = pki.issue_from_csr(
        make_csr(ec_key()), bound_unit.physical_id, Profile.DEVICE, actor=ACTOR
    )
    verifier = DeviceCertVerifier(
        [hierarchy.root.certificate],
        [hierarchy.issuing.certificate],
        pki.status_source(),
        clock,
    )
    signer = pki.ocsp_signer(hierarchy.issuing.ca_id)
    responder = OcspResponder(
        [(signer.issuer, signer.certificate, pki.ocsp_signing_key(signer))],
        pki.status_source(),
        clock,
    )
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(issued.certificate, hierarchy.issuing.certificate, hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )

    device = verifier.verify_pem(issued.certificate.public_bytes(serialization.Encoding.PEM))
    assert (device.physical_id, device.logical_name) == (bound_unit.physical_id, NAME)
    assert device.serial == issued.serial
    good = ocsp.load_der_ocsp_response(responder.respond(request))
    assert good.certificate_status is ocsp.OCSPCertStatus.GOOD

    pki.revoke(issued.serial, "keyCompromise", actor=ACTOR)
    with pytest.raises(CertificateRefused) as refused:
        verifier.verify([issued.certificate])
    assert refused.value.code == "auth.cert_revoked"
    revoked = ocsp.load_der_ocsp_response(responder.respond(request))
    assert revoked.certificate_status is ocsp.OCSPCertStatus.REVOKED

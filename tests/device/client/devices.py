"""Factory steps for the tests: enroll a unit the way the platform's operator and the
factory would, leaving its provisioning secret or birth key in the device's keystore."""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from devicetrust.device.client import SymmetricKeyAttestation, X509Attestation
from devicetrust.device.keystore import Keystore
from tests.device.client.platform import Platform


def symmetric_device_key(platform: Platform) -> tuple[str, bytes]:
    """A new unit of the symmetric-key group and its device key (what the factory flashes:
    `devicetrust factory derive-key`)."""
    if "symmetric-key" not in platform.groups:  # the server allows one group per method
        created = platform.api("POST", "/v1/enrollments/groups", {
            "name": "line-03", "attestation": "symmetric-key",
            "allocation": {"policy": "pool", "pool_pattern": "line-03-left-welding-{01..99}"},
        })
        platform.groups["symmetric-key"] = base64.urlsafe_b64decode(created["key"] + "==")
    pid = platform.unit()
    return pid, hmac.digest(platform.groups["symmetric-key"], pid.encode(), hashlib.sha256)


def symmetric_unit(platform: Platform, keystore: Keystore) -> tuple[str, SymmetricKeyAttestation]:
    """A unit of the symmetric-key group; its device key sealed in the keystore."""
    pid, device_key = symmetric_device_key(platform)
    keystore.seal("provisioning-key", device_key)
    return pid, SymmetricKeyAttestation(keystore)


def x509_unit(platform: Platform, keystore: Keystore) -> tuple[str, X509Attestation]:
    """A unit of the x509 group: a birth key in the keystore, its birth certificate issued
    by the manufacturing CA."""
    if "x509" not in platform.groups:
        platform.api("POST", "/v1/enrollments/groups", {
            "name": "factory-a", "attestation": "x509", "ca_id": platform.manufacturing_ca(),
            "allocation": {"policy": "pool", "pool_pattern": "cell-{01..99}"},
        })
        platform.groups["x509"] = b""
    pid = platform.unit()
    birth = keystore.create_key("birth")
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(
        birth.signer(), hashes.SHA256())
    issued = platform.api("POST", "/v1/pki/certificates", {
        "csr": csr.public_bytes(Encoding.PEM).decode(), "physical_id": pid, "profile": "birth",
    })
    return pid, X509Attestation(birth, issued["pem"])
